"""`runs.schedule`: when a run is due for the runners, and `store.runs.claim_due`, on a SQLite unit of work."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator import limits
from emulator.context import Ctx
from emulator.runs import executor, pending, phases, schedule
from emulator.store import runs as store
from tests.runs_unit import Unit, new_run, sqlite_unit


@pytest.fixture
def unit(tmp_path: Path) -> Iterator[Unit]:
    with sqlite_unit(tmp_path) as made:
        yield made


def test_a_queued_run_is_due_after_the_grace_and_a_finished_one_never(unit: Unit) -> None:
    def work(ctx: Ctx) -> None:
        run = new_run(ctx)
        before = time.time()
        schedule.plan(ctx, run)
        assert run.due_at is not None
        assert before + limits.RUNNER_GRACE_SECONDS <= run.due_at <= time.time() + limits.RUNNER_GRACE_SECONDS
        executor.settle(ctx, run)
        schedule.plan(ctx, run)
        assert run.status == "completed" and run.due_at is None

    unit(work)


def test_a_run_waiting_for_its_answer_is_due_when_a_poll_would_see_it(tmp_path: Path) -> None:
    with sqlite_unit(tmp_path, latency_ttft_ms=2000) as unit:
        def work(ctx: Ctx) -> None:
            run = new_run(ctx)
            executor.advance_once(ctx, run)
            executor.advance_once(ctx, run)  # the model call: the answer is ready in 2 s
            schedule.plan(ctx, run)
            assert run.status == "in_progress" and run.due_at is not None
            assert run.due_at - time.time() == pytest.approx(2 + limits.RUNNER_GRACE_SECONDS, abs=0.2)

        unit(work)


def test_polls_policy_makes_no_run_due(tmp_path: Path) -> None:
    with sqlite_unit(tmp_path, run_progression="polls:2") as unit:
        def work(ctx: Ctx) -> None:
            run = new_run(ctx)
            schedule.plan(ctx, run)
            assert run.due_at is None

        unit(work)


def test_a_run_requiring_action_is_not_due_and_a_stalled_one_is_due_later(unit: Unit) -> None:
    def work(ctx: Ctx) -> None:
        run = new_run(ctx)
        schedule.plan(ctx, run, stalled=True)
        assert run.due_at is not None and run.due_at >= time.time() + limits.RUNNER_RETRY_SECONDS - 0.1
        run.status = "requires_action"
        schedule.plan(ctx, run)
        assert run.due_at is None

    unit(work)


def test_claim_due_takes_due_unheld_runs_once(unit: Unit) -> None:
    now = time.time()

    def make(ctx: Ctx) -> list[str]:
        due, later, held = new_run(ctx), new_run(ctx), new_run(ctx)
        due.due_at, later.due_at, held.due_at = now - 1, now + 60, now - 1
        held.lease_until = now + 60
        return [due.id, later.id, held.id]

    due_id, _later, _held = unit(make)
    assert unit(lambda ctx: store.claim_due(ctx.session, now, 4.0, 10)) == [due_id]
    assert unit(lambda ctx: store.claim_due(ctx.session, now, 4.0, 10)) == []  # claimed: due in 4 s
    assert unit(lambda ctx: store.claim_due(ctx.session, now + 5, 4.0, 10)) == [due_id]

    def finish(ctx: Ctx) -> None:
        run = store.get_by_id(ctx.session, due_id)
        assert run is not None
        phases.fail(ctx, run, "server_error", "done")
        assert run.due_at is None

    unit(finish)
    assert unit(lambda ctx: store.claim_due(ctx.session, now + 30, 4.0, 10)) == []  # ended: never due again


def test_a_seeded_server_makes_no_run_due(tmp_path: Path) -> None:
    """`--seed`: the runner leaves runs to reads, so that the seeded ids follow the client's requests."""
    with sqlite_unit(tmp_path, seed=7) as unit:
        def work(ctx: Ctx) -> None:
            run = new_run(ctx)
            schedule.plan(ctx, run)
            assert run.due_at is None

        unit(work)


@pytest.mark.parametrize("settings", [{"seed": 7}, {"run_progression": "polls:2"}, {}])
def test_a_code_cell_is_due_at_once_and_a_read_leaves_it_to_the_runner(
    tmp_path: Path, settings: dict[str, object]
) -> None:
    """A cell is the runner's whatever the policy or seed: a read that reaches it runs nothing (no transaction
    would be held for the cell's time) and the run stays due."""
    with sqlite_unit(tmp_path, **settings) as unit:
        def work(ctx: Ctx) -> None:
            run = new_run(ctx, "Run:\n```python\nprint(1)\n```", tools=[{"type": "code_interpreter"}])
            executor.advance_once(ctx, run)
            executor.advance_once(ctx, run)  # the model call: the code step opens with its cell pending
            turn = pending.of(run)
            assert isinstance(turn, pending.CodeTurn) and turn.claimed_by is None
            assert executor.settle(ctx, run) == []
            assert pending.of(run) == turn and run.unfinished_work is None, "the read ran no cell"
            schedule.plan(ctx, run)
            assert run.due_at is not None and run.due_at <= time.time()

        unit(work)
