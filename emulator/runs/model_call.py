"""A run's model call, step by step: the prompt, the answer (a scripted turn or the model's), the tenant's
model rate limit, the run's token limits, the answer's timing, and the step the answer opens
(`turn_steps`)."""

from __future__ import annotations

from dataclasses import dataclass

from emulator import model_catalog, tokens
from emulator.context import Ctx
from emulator.control import latency, ratelimits
from emulator.errors import RateLimited
from emulator.model_catalog import ModelInfo
from emulator.runs import citations, code_interpreter, file_search, phases, scripts, turn_steps, upstream_turn
from emulator.runs.events import Event
from emulator.runs.live import LiveTurn
from emulator.runs.pending import Timing
from emulator.runs.prompt import Assembled, DoesNotFit, assemble, completed_tool_calls
from emulator.runs.upstream_model import UpstreamModel
from emulator.schemas.runs import render_usage
from emulator.store import runs as store
from emulator.store.rows import Run, RunStep
from emulator.stub_model import ModelTurn, ToolResult
from emulator.upstream.deltas import Usage as UpstreamUsage


@dataclass(frozen=True)
class _Answer:
    """A model turn within the run's completion limit: its text cut to the tokens left, if it had to be."""

    text: str | None
    completion_tokens: int
    truncated: bool


def call(ctx: Ctx, run: Run, *, streaming: bool = False, by_runner: bool = False) -> list[Event]:
    """Ask the model for the run's next turn and open the step it makes (or end the run: a prompt that does not
    fit, a refused or failed call, a limit reached). An upstream model is asked with no transaction open
    (`upstream_turn`): once it has answered, the call starts again in a new transaction and finds the answer.
    A read (neither `streaming` nor `by_runner`) leaves an upstream call to a runner."""
    info = model_catalog.info_or_fallback(run.model)
    prompt = _prompt(ctx, run, info)
    if isinstance(prompt, DoesNotFit):
        return _does_not_fit(ctx, run, prompt, info.context_window)
    scripted = scripts.pick(ctx, run, prompt.request)
    reported: UpstreamUsage | None = None
    live: LiveTurn | None = None
    if scripted.turn is not None:
        turn = scripted.turn
    elif isinstance(ctx.model, UpstreamModel):
        asked = upstream_turn.ask(ctx, run, ctx.model, prompt, _completion_room(run), streaming=streaming,
                                  by_runner=by_runner)
        if asked is None:
            return call(ctx, run, streaming=streaming, by_runner=by_runner)
        if isinstance(asked, list):
            return asked
        turn, reported, live = asked.turn, asked.usage, asked.live
    else:
        turn = ctx.model.respond(prompt.request)
    prompt_tokens = prompt.prompt_tokens if reported is None else reported.prompt_tokens
    completion_tokens = _completion_tokens(turn, info.encoding) if reported is None else reported.completion_tokens
    refusal = _charge(ctx, run, prompt_tokens + completion_tokens)
    if refusal is not None:
        return phases.fail(ctx, run, "rate_limit_exceeded", refusal)
    snapshot = scripts.request_snapshot(prompt.request, prompt_tokens, prompt.dropped_messages)
    scripts.consume(ctx, run, scripted, snapshot)
    if turn.error is not None and live is not None:
        upstream_turn.count_partial(ctx, run, prompt_tokens, reported, live)
        return phases.fail(ctx, run, *turn.error)
    run.prompt_tokens += prompt_tokens
    if turn.error is not None:
        return phases.fail(ctx, run, *turn.error)
    if turn.incomplete_reason == "max_prompt_tokens":
        return phases.end_incomplete(ctx, run, "max_prompt_tokens")
    room = _completion_room(run)
    if room is not None and completion_tokens > room and turn.function_calls:
        run.completion_tokens += room  # calls cannot be cut: the run ends with its limit spent
        return phases.end_incomplete(ctx, run, "max_completion_tokens")
    streamed = live is not None and live.opened_message is not None
    answer = _within_room(turn, completion_tokens, room, info.encoding, streamed=streamed)
    run.completion_tokens += answer.completion_tokens
    usage = render_usage(prompt_tokens, answer.completion_tokens)
    timing = _timing(ctx, run, scripted.delay, answer.completion_tokens)
    return _open_step(ctx, run, turn, answer, usage, timing, live)


def _prompt(ctx: Ctx, run: Run, info: ModelInfo) -> Assembled | DoesNotFit:
    history = store.thread_history(ctx.session, run.thread_id)
    budget = _prompt_budget(run, info.context_window)
    searchable = file_search.store_ids(ctx, run)
    steps = store.steps_of(ctx.session, run.id)
    return assemble(
        run, history, _tool_results(steps), encoding=info.encoding, budget=budget,
        retrieved=file_search.retrieved(steps), can_search=bool(searchable),
        code_results=code_interpreter.results(run, steps), can_run_code=code_interpreter.available(run),
    )


def _prompt_budget(run: Run, window: int) -> int:
    if run.max_prompt_tokens is None:
        return window
    return min(window, run.max_prompt_tokens - run.prompt_tokens)


def _tool_results(steps: list[RunStep]) -> list[ToolResult]:
    return [
        ToolResult(call["id"], call["function"]["name"], call["function"]["arguments"], call["function"]["output"])
        for call in completed_tool_calls(steps, "function")
    ]


def _does_not_fit(ctx: Ctx, run: Run, prompt: DoesNotFit, window: int) -> list[Event]:
    if run.max_prompt_tokens is not None and prompt.budget < window:
        return phases.end_incomplete(ctx, run, "max_prompt_tokens")
    return phases.fail_without_work(
        ctx, run, "invalid_prompt",
        f"The prompt ({prompt.prompt_tokens} tokens) exceeds the model's context window of {window} "
        "tokens; use truncation_strategy 'auto' or fewer messages.",
    )


def _completion_tokens(turn: ModelTurn, encoding: str) -> int:
    if turn.text is not None:
        return tokens.count(turn.text, encoding)
    if turn.file_search_query is not None:
        return tokens.count(turn.file_search_query, encoding)
    if turn.code is not None:
        return tokens.count(turn.code, encoding)
    return sum(tokens.count(call.name + call.arguments, encoding) for call in turn.function_calls)


def _charge(ctx: Ctx, run: Run, total_tokens: int) -> str | None:
    """Count the call against the tenant's per-model limits; the refusal text when it goes over."""
    limit = ratelimits.model_call_limit(ctx.session, ctx.tenant, run.model)
    if limit is None:
        return None
    try:
        ratelimits.charge(ctx.session, ctx.tenant, f"model:{run.model}", limit, ctx.now, tokens=total_tokens)
    except RateLimited as refused:
        return refused.message
    return None


def _completion_room(run: Run) -> int | None:
    """Completion tokens the run may still spend (None: no limit)."""
    return None if run.max_completion_tokens is None else run.max_completion_tokens - run.completion_tokens


def _within_room(
    turn: ModelTurn, completion_tokens: int, room: int | None, encoding: str, *, streamed: bool
) -> _Answer:
    """The turn's text cut to `room` tokens when it has more (a built-in tool's input is never cut). A text that
    already went out to the run's streams as it came (`streamed`) is kept whole: it is what the client has; its
    tokens count up to the room."""
    if room is not None and completion_tokens > room and turn.text is not None:
        if streamed:
            return _Answer(turn.text, room, True)
        return _Answer(tokens.decode(tokens.encode(turn.text, encoding)[:room], encoding), room, True)
    return _Answer(turn.text, completion_tokens, turn.incomplete_reason is not None)


def _timing(ctx: Ctx, run: Run, delay: float, completion_tokens: int) -> Timing:
    """When the answer is ready: after the script's delay, the time to first token and the generation."""
    profile = latency.profile(ctx, run.model)
    first_token_at = ctx.precise_now + delay + profile.ttft_seconds
    return Timing(
        first_token_at, first_token_at + profile.generation_seconds(completion_tokens),
        1 / profile.tokens_per_second if profile.tokens_per_second else 0.0,
    )


def _open_step(
    ctx: Ctx, run: Run, turn: ModelTurn, answer: _Answer, usage: dict[str, int], timing: Timing,
    live: LiveTurn | None,
) -> list[Event]:
    if turn.file_search_query is not None:
        return turn_steps.search_files(ctx, run, usage, turn.file_search_query)
    if turn.code is not None:
        return turn_steps.open_code_call(ctx, run, usage, turn.code)
    if answer.text is not None:
        return turn_steps.open_message(
            ctx, run, timing, usage, answer.text, truncated=answer.truncated, chunk_size=turn.chunk_size,
            cited=citations.of_turn(turn.citations), images=list(turn.images),
            live=live,
        )
    return turn_steps.open_function_calls(ctx, run, timing, usage, turn.function_calls, live)
