"""`runs.executor` and `runs.model_call`: a run advanced phase by phase with the stub model (or a model of the
test's), on a SQLite unit of work (no server)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator.context import Ctx
from emulator.runs import executor, leases, pending, phases
from emulator.runs.state import RunStatus
from emulator.store import runs as store
from emulator.store.rows import Run
from emulator.stub_model import FunctionCall, ModelRequest, ModelTurn
from tests.runs_unit import Unit, active_run_of, new_run, sqlite_unit

WEATHER = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]


@pytest.fixture
def unit(tmp_path: Path) -> Iterator[Unit]:
    with sqlite_unit(tmp_path) as made:
        yield made


class _Answers:
    """A model that plays the given turns in order."""

    def __init__(self, *turns: ModelTurn) -> None:
        self.turns = list(turns)
        self.requests: list[ModelRequest] = []

    def respond(self, request: ModelRequest) -> ModelTurn:
        self.requests.append(request)
        return self.turns.pop(0)


def _answer_of(ctx: Ctx, run: Run) -> str:
    message = [row for row in store.thread_history(ctx.session, run.thread_id) if row.role == "assistant"][-1]
    value: str = message.content[0]["text"]["value"]
    return value


def test_a_run_settles_phase_by_phase_to_the_stub_models_answer(unit: Unit) -> None:
    def work(ctx: Ctx) -> None:
        run = new_run(ctx, "hello")
        phases = []
        while produced := executor.advance_once(ctx, run):
            phases.append([event.name for event in produced])
        assert phases == [
            ["thread.run.in_progress"],
            ["thread.run.step.created", "thread.run.step.in_progress", "thread.message.created",
             "thread.message.in_progress"],
            ["thread.message.delta"] * 3 + ["thread.message.completed", "thread.run.step.completed",
                                            "thread.run.completed"],
        ]
        assert executor.is_resting(run) and run.status == RunStatus.COMPLETED
        assert _answer_of(ctx, run) == "You said: hello"
        assert run.prompt_tokens > 0 and run.completion_tokens > 0
        assert active_run_of(ctx, run) is None

    unit(work)


def test_function_calls_wait_for_their_outputs_then_the_run_answers_with_them(unit: Unit) -> None:
    def work(ctx: Ctx) -> None:
        run = new_run(ctx, "what is the weather?", tools=WEATHER, tool_choice="required")
        executor.settle(ctx, run)
        assert run.status == RunStatus.REQUIRES_ACTION and executor.is_resting(run)
        assert run.required_action is not None
        call = run.required_action["submit_tool_outputs"]["tool_calls"][0]
        assert call["function"]["name"] == "get_weather"
        executor.settle(ctx, run)
        assert run.status == RunStatus.REQUIRES_ACTION  # nothing moves until the outputs come
        phases.accept_tool_outputs(ctx, run, {call["id"]: "sunny"})
        executor.settle(ctx, run)
        assert run.status == RunStatus.COMPLETED
        assert "sunny" in _answer_of(ctx, run)
        assert [step.status for step in store.steps_of(ctx.session, run.id)] == ["completed", "completed"]

    unit(work)


def test_polls_n_moves_a_polled_run_only_from_its_nth_observation(tmp_path: Path) -> None:
    with sqlite_unit(tmp_path, run_progression="polls:3") as unit:
        def work(ctx: Ctx) -> None:
            run = new_run(ctx)
            assert executor.observe(ctx, run) == [] and executor.observe(ctx, run) == []
            assert (run.status, run.observations) == ("queued", 2)
            assert executor.observe(ctx, run)[-1].name == "thread.run.completed"
            assert executor.observe(ctx, run) == []  # a resting run is not observed further
            assert run.observations == 3

        unit(work)


def test_a_run_under_a_streams_lease_is_left_to_the_stream(unit: Unit) -> None:
    def work(ctx: Ctx) -> None:
        run = new_run(ctx)
        leases.take(run)
        assert executor.observe(ctx, run) == [] and run.status == RunStatus.QUEUED
        leases.drop(run)
        executor.observe(ctx, run)
        assert run.status == RunStatus.COMPLETED

    unit(work)


def test_an_answer_waits_for_its_latency(tmp_path: Path) -> None:
    with sqlite_unit(tmp_path, latency_ttft_ms=60_000) as unit:
        def work(ctx: Ctx) -> None:
            run = new_run(ctx)
            executor.advance_once(ctx, run)
            executor.advance_once(ctx, run)  # the model call: its answer is a minute away
            assert isinstance(pending.of(run), pending.TextTurn)
            assert 55 < executor.wait_seconds(ctx, run, streaming=True) <= 60
            assert executor.advance_once(ctx, run) == [] and run.status == RunStatus.IN_PROGRESS

        unit(work)


def test_a_model_error_fails_the_run_with_it(unit: Unit) -> None:
    unit.model = _Answers(ModelTurn(error=("server_error", "upstream broke")))

    def work(ctx: Ctx) -> None:
        run = new_run(ctx)
        executor.settle(ctx, run)
        assert (run.status, run.last_error) == ("failed", {"code": "server_error", "message": "upstream broke"})
        assert store.steps_of(ctx.session, run.id) == []

    unit(work)


def test_text_past_the_completion_limit_is_cut_and_the_run_ends_incomplete(unit: Unit) -> None:
    unit.model = _Answers(ModelTurn(text="one two three four five six seven eight"))

    def work(ctx: Ctx) -> None:
        run = new_run(ctx, max_completion_tokens=3)
        executor.settle(ctx, run)
        assert (run.status, run.incomplete_details) == ("incomplete", {"reason": "max_completion_tokens"})
        assert run.completion_tokens == 3
        assert _answer_of(ctx, run) == "one two three"

    unit(work)


def test_function_calls_past_the_completion_limit_end_the_run_with_the_limit_spent(unit: Unit) -> None:
    unit.model = _Answers(ModelTurn(function_calls=(FunctionCall("get_weather", '{"city": "Paris, France"}'),)))

    def work(ctx: Ctx) -> None:
        run = new_run(ctx, tools=WEATHER, max_completion_tokens=2)
        executor.settle(ctx, run)
        assert (run.status, run.incomplete_details) == ("incomplete", {"reason": "max_completion_tokens"})
        assert run.completion_tokens == 2
        assert store.steps_of(ctx.session, run.id) == []

    unit(work)


def test_a_prompt_past_max_prompt_tokens_ends_the_run_incomplete(unit: Unit) -> None:
    def work(ctx: Ctx) -> None:
        run = new_run(ctx, "word " * 5, max_prompt_tokens=1)
        executor.settle(ctx, run)
        assert (run.status, run.incomplete_details) == ("incomplete", {"reason": "max_prompt_tokens"})

    unit(work)
