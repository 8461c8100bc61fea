"""`runs.phases`: each move of a run and its steps, on a SQLite unit of work (no server)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator.context import Ctx
from emulator.runs import pending, phases
from emulator.runs.pending import FunctionCallsTurn, TextTurn, Timing
from emulator.runs.state import IllegalTransition, RunStatus, StepStatus
from emulator.store import messages as message_store
from emulator.store import runs as store
from emulator.store.rows import Run, RunStep
from tests.runs_unit import TENANT, Unit, active_run_of, new_run, sqlite_unit

USAGE = {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}


@pytest.fixture
def unit(tmp_path: Path) -> Iterator[Unit]:
    with sqlite_unit(tmp_path) as made:
        yield made


def _started(ctx: Ctx) -> Run:
    run = new_run(ctx)
    phases.start(ctx, run)
    return run


def _function_calls_step(ctx: Ctx, run: Run) -> RunStep:
    step = phases.new_step(ctx, run, "tool_calls", {"type": "tool_calls", "tool_calls": [
        {"id": "call_a", "type": "function", "function": {"name": "f", "arguments": "{}", "output": None}},
    ]})
    pending.put(run, FunctionCallsTurn(step.id, USAGE, Timing()))
    return step


def test_start_moves_a_queued_run_in_progress_once(unit: Unit) -> None:
    def work(ctx: Ctx) -> None:
        run = new_run(ctx)
        produced = phases.start(ctx, run)
        assert [event.name for event in produced] == ["thread.run.in_progress"]
        assert (run.status, run.started_at) == ("in_progress", ctx.now)

    unit(work)


def test_an_illegal_move_is_refused(unit: Unit) -> None:
    def work(ctx: Ctx) -> None:
        run = new_run(ctx)
        with pytest.raises(IllegalTransition):
            phases.finish_cancel(ctx, run)  # a queued run is cancelled through `cancelling`
        with pytest.raises(IllegalTransition):
            phases.move(ctx, run, RunStatus.COMPLETED)
        assert run.status == RunStatus.QUEUED

    unit(work)


def test_a_cancel_closes_the_open_step_and_message_and_frees_the_thread(unit: Unit) -> None:
    def work(ctx: Ctx) -> None:
        run = _started(ctx)
        step = phases.new_step(ctx, run, "message_creation", {"type": "message_creation"})
        message = message_store.create(
            ctx.session, tenant=TENANT, message_id="msg_open", thread_id=run.thread_id, now=ctx.now,
            role="assistant", content=[], attachments=[], metadata={}, status="in_progress", run_id=run.id,
        )
        assert [event.name for event in phases.request_cancel(ctx, run)] == ["thread.run.cancelling"]
        produced = phases.finish_cancel(ctx, run)
        assert [event.name for event in produced] == [
            "thread.run.cancelling", "thread.message.incomplete", "thread.run.step.cancelled", "thread.run.cancelled",
        ]
        assert (run.status, run.cancelled_at, run.pending_turn, run.lease_until) == ("cancelled", ctx.now, None, None)
        assert (step.status, step.cancelled_at) == ("cancelled", ctx.now)
        assert (message.status, message.incomplete_details) == ("incomplete", {"reason": "run_cancelled"})
        assert active_run_of(ctx, run) is None

    unit(work)


def test_a_run_past_its_expiry_expires_and_one_before_it_does_not(unit: Unit) -> None:
    def work(ctx: Ctx) -> None:
        run = _started(ctx)
        assert phases.expire_if_due(ctx, run) == []
        run.expires_at = ctx.now
        produced = phases.expire_if_due(ctx, run)
        assert [event.name for event in produced] == ["thread.run.expired"]
        assert run.status == RunStatus.EXPIRED
        assert active_run_of(ctx, run) is None
        assert phases.expire_if_due(ctx, run) == []  # a terminal run stays as it is

    unit(work)


def test_a_failure_keeps_the_model_calls_usage_on_its_open_step(unit: Unit) -> None:
    def work(ctx: Ctx) -> None:
        run = _started(ctx)
        step = _function_calls_step(ctx, run)
        produced = phases.fail(ctx, run, "server_error", "broke")
        assert [event.name for event in produced] == ["thread.run.step.failed", "thread.run.failed"]
        assert (run.status, run.last_error, run.failed_at) == ("failed", {"code": "server_error", "message": "broke"},
                                                               ctx.now)
        assert (step.status, step.usage) == (StepStatus.FAILED, USAGE)

    unit(work)


def test_function_calls_require_action_then_take_their_outputs_and_complete_at_the_next_start(unit: Unit) -> None:
    def work(ctx: Ctx) -> None:
        run = _started(ctx)
        step = _function_calls_step(ctx, run)
        phases.request_action(ctx, run)
        assert run.status == RunStatus.REQUIRES_ACTION
        assert run.required_action == {"type": "submit_tool_outputs", "submit_tool_outputs": {"tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
        ]}}
        phases.accept_tool_outputs(ctx, run, {"call_a": "42"})
        assert (run.status, run.required_action) == ("queued", None)
        assert step.step_details["tool_calls"][0]["function"]["output"] == "42"
        produced = phases.start(ctx, run)
        assert [event.name for event in produced] == ["thread.run.in_progress", "thread.run.step.completed"]
        assert (step.status, step.usage, run.pending_turn) == ("completed", USAGE, None)

    unit(work)


def test_delivered_text_completes_its_message_step_and_run(unit: Unit) -> None:
    def work(ctx: Ctx) -> None:
        run = _started(ctx)
        step = phases.new_step(ctx, run, "message_creation", {"type": "message_creation"})
        message_store.create(
            ctx.session, tenant=TENANT, message_id="msg_answer", thread_id=run.thread_id, now=ctx.now,
            role="assistant", content=[], attachments=[], metadata={}, status="in_progress", run_id=run.id,
        )
        cited = [{"marker": "【0:0†a.txt】", "file_id": "file_a", "kind": "file_citation"}]
        turn = TextTurn(step.id, USAGE, Timing(), "msg_answer", "See 【0:0†a.txt】 now", truncated=False,
                        citations=cited)
        produced = phases.deliver_text(ctx, run, turn)
        names = [event.name for event in produced]
        assert names == ["thread.message.delta"] * 3 + [
            "thread.message.completed", "thread.run.step.completed", "thread.run.completed",
        ]
        message = message_store.get(ctx.session, TENANT, run.thread_id, "msg_answer")
        annotation = message.content[0]["text"]["annotations"][0]
        assert (annotation["start_index"], annotation["end_index"], annotation["file_citation"]) == (
            4, 15, {"file_id": "file_a"}
        )
        assert (run.status, step.usage, store.open_message(ctx.session, run.id)) == ("completed", USAGE, None)

    unit(work)


def test_cut_text_leaves_the_message_and_the_run_incomplete(unit: Unit) -> None:
    def work(ctx: Ctx) -> None:
        run = _started(ctx)
        step = phases.new_step(ctx, run, "message_creation", {"type": "message_creation"})
        message = message_store.create(
            ctx.session, tenant=TENANT, message_id="msg_cut", thread_id=run.thread_id, now=ctx.now,
            role="assistant", content=[], attachments=[], metadata={}, status="in_progress", run_id=run.id,
        )
        phases.deliver_text(ctx, run, TextTurn(step.id, USAGE, Timing(), "msg_cut", "Half", truncated=True))
        assert (message.status, message.incomplete_details) == ("incomplete", {"reason": "max_tokens"})
        assert (run.status, run.incomplete_details) == ("incomplete", {"reason": "max_completion_tokens"})

    unit(work)
