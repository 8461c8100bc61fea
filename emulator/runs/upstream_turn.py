"""A run's model call answered by the upstream: the request it is asked, the call outside the transaction, and
the answer as the `ModelTurn` the stub would have made (so steps and events are the same).

    outcome = ask(ctx, run, model, prompt, room, streaming=...)
    None            the call was made and the run re-read: call the model again, which finds the kept answer
    list of events  the run moved while the upstream answered (a cancel, an expiry): the answer is discarded, the
                    tokens used so far are counted, a message being generated ends `incomplete` with its text
    Asked           the kept answer, taken: this transaction records it (usage None: count with tiktoken) on the
                    step (and message) that the turn opened as it arrived (`live`)

A stream's call runs on the event loop and holds no worker thread (`CallInFlight`); a runner's holds the runner's
worker thread while it waits; a read leaves the call to a runner and answers at once. The call's fragments reach
the run's streams as the upstream sends them (`live`, `upstream_model`).

Built-in tools are offered as functions (`upstream.request`); when the upstream calls one, the turn is a
file_search query or a code cell that the run executes itself. Markers the answer copies from the retrieved
passages (`【i:j†name】`) become `file_citation` annotations, `sandbox:/mnt/data/<name>` links to files the code
made `file_path` annotations, as with the stub.
"""

from __future__ import annotations

import concurrent.futures
import functools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, cast

from emulator import model_catalog
from emulator.context import Ctx
from emulator.db import require_worker_thread
from emulator.runs import code_interpreter, leases, outside, phases
from emulator.runs.events import Event
from emulator.runs.live import LiveTurn
from emulator.runs.prompt import Assembled
from emulator.runs.state import RunStatus, StepStatus
from emulator.runs.upstream_model import Answer, UpstreamModel
from emulator.schemas.runs import render_usage
from emulator.store import runs as store
from emulator.store.rows import Run, RunStep
from emulator.stub_model import Citation, FunctionCall, ModelRequest, ModelTurn
from emulator.upstream.deltas import FinishedTurn, Usage
from emulator.upstream.errors import UpstreamError
from emulator.upstream.request import (
    BUILT_IN_NAMES,
    CODE_INTERPRETER,
    FILE_SEARCH,
    ConversationMessage,
    ToolCallOutcome,
    ToolRound,
    TurnRequest,
    retrieval_output,
)

log = logging.getLogger("emulator.runs")

_KEY = "model"
QUERIES = "file_search_queries"
"""Internal tool state of a run: each file_search call's query (by call id), which the upstream is shown again."""
_BUILT_IN_PARAMETER = {FILE_SEARCH: "query", CODE_INTERPRETER: "code"}


@dataclass(frozen=True)
class Asked:
    turn: ModelTurn
    usage: Usage | None
    live: LiveTurn
    """What the turn opened while it arrived (a step, a message), and what it said until it ended."""


class CallInFlight(Exception):
    """Raised out of a stream's phase once the call has started (its claim committed): the stream waits for
    `call` on the event loop, holding no worker thread (renewing the claim with `renew`), then runs the next
    phase, which begins with `after_call`."""

    def __init__(self, call: concurrent.futures.Future[Answer], renew: Callable[[], None]) -> None:
        super().__init__("the upstream model call is in flight")
        self.call = call
        self.renew = renew


def ask(
    ctx: Ctx, run: Run, model: UpstreamModel, prompt: Assembled, room: int | None, *, streaming: bool,
    by_runner: bool = False,
) -> Asked | list[Event] | None:
    found, kept = outside.kept(run.id, _KEY)
    if found and run.unfinished_work is not None:  # a call nobody waited for (its stream went): see the run now
        moved = after_call(ctx, run, streaming=streaming)
        if moved is not None:
            return moved
    if found:
        # Taken now, not once this transaction commits: the next phase of this unit of work may call the model
        # again (after a file_search step). A rollback after this loses the answer: the upstream is asked again.
        outside.drop(run.id, _KEY)
        answer, live, _prompt_tokens = kept
        return Asked(*_as_turn(run, answer, prompt.request, live), live)
    if not (streaming or by_runner):
        return []  # a read leaves the call to a runner (`runs.schedule`): it answers the run in_progress
    require_worker_thread("an upstream model call waits for the upstream")
    request = turn_request(ctx, run, prompt, room)
    outside.claim(ctx, run, "upstream model call", outside.HELD_SECONDS)
    renew = outside.renewer(ctx, run.id)
    live = LiveTurn.of(ctx, run)
    prompt_tokens = prompt.prompt_tokens
    if streaming:
        def done(answer: Answer) -> None:
            outside.keep(run.id, _KEY, (answer, live, prompt_tokens))

        raise CallInFlight(model.start(run.id, request, live, done), renew)
    answer = model.answer(run.id, request, live, renew=renew, every=outside.RENEW_EVERY_SECONDS)
    outside.keep(run.id, _KEY, (answer, live, prompt_tokens))
    return after_call(ctx, run, streaming=False)


def after_call(ctx: Ctx, run: Run, *, streaming: bool) -> list[Event] | None:
    """Once the call has ended (its answer kept): the run as it is now. None: record the answer (call the model
    again, which finds it); else the run moved meanwhile (a cancel, an expiry) and the answer is discarded, with
    the tokens it used counted and the text it said kept on its `incomplete` message."""
    found, kept = outside.kept(run.id, _KEY)
    if not found:
        return None
    answer, live, prompt_tokens = kept
    if not outside.reread(ctx, run):
        outside.drop(run.id, _KEY)
        return []
    if streaming:
        leases.take(run)
    else:
        leases.drop(run)
    live.write_text(ctx, run)
    if phases.due_to_expire(ctx, run) or run.status != RunStatus.IN_PROGRESS or run.pending_turn is not None:
        outside.drop(run.id, _KEY)
        log.info("run %s moved (%s) while the upstream answered: its answer is discarded", run.id, run.status)
        if run.status in (RunStatus.IN_PROGRESS, RunStatus.CANCELLING) and run.pending_turn is None:
            count_partial(ctx, run, prompt_tokens, answer.usage if isinstance(answer, FinishedTurn) else None, live)
        expired = phases.expire_if_due(ctx, run)
        if expired:
            return expired
        return phases.finish_cancel(ctx, run) if run.status == RunStatus.CANCELLING else []
    return None


def count_partial(ctx: Ctx, run: Run, prompt_tokens: int, reported: Usage | None, live: LiveTurn) -> None:
    """A turn that did not finish (cancelled, expired, failed): the tokens it used count on the run and on the step
    it opened, as the upstream reported them or, without a report, as counted here."""
    if reported is not None:
        prompt_tokens = reported.prompt_tokens
    completion = reported.completion_tokens if reported is not None else live.generated_tokens(
        model_catalog.info_or_fallback(run.model).encoding)
    run.prompt_tokens += prompt_tokens
    run.completion_tokens += completion
    if live.step_id is not None:
        step = store.get_step(ctx.session, run.id, live.step_id)
        if step.status == StepStatus.IN_PROGRESS:
            step.usage = render_usage(prompt_tokens, completion)


def abort(ctx: Ctx, run_id: str) -> None:
    """The run is being cancelled: once that commits, its upstream call in this process (if any) ends."""
    if isinstance(ctx.model, UpstreamModel):
        ctx.after_commit(functools.partial(ctx.model.abort, run_id))


def _as_turn(run: Run, answer: FinishedTurn | UpstreamError | None, request: ModelRequest, live: LiveTurn
             ) -> tuple[ModelTurn, Usage | None]:
    if answer is None:
        return ModelTurn(error=("server_error", "The upstream model call was aborted.")), None
    if isinstance(answer, UpstreamError):
        log.error("run %s fails: its upstream model call failed: %s", run.id, answer.message)
        return ModelTurn(error=(answer.code, answer.message)), None
    try:
        return model_turn(answer, request, functions_only=live.kind == "tool_calls"), answer.usage
    except UpstreamError as error:
        log.error("run %s fails: %s", run.id, error.message)
        return ModelTurn(error=(error.code, error.message)), answer.usage


def model_turn(finished: FinishedTurn, request: ModelRequest, *, functions_only: bool = False) -> ModelTurn:
    """The upstream's turn as the stub's: a built-in call, function calls, or text with its citations.
    `functions_only`: the function calls' step is open already (`live`), a built-in called after them is left out."""
    calls = finished.tool_calls
    if functions_only:
        calls = tuple(call for call in calls if call.name not in BUILT_IN_NAMES)
    built_in = next((call for call in calls if call.name in BUILT_IN_NAMES), None)
    if built_in is not None:
        parameter = _BUILT_IN_PARAMETER[built_in.name]
        value = built_in.parsed.get(parameter)
        if not isinstance(value, str):
            raise UpstreamError("server_error", f"the upstream called {built_in.name} without a string "
                                f"{parameter!r} argument: {built_in.arguments[:200]!r}", kind="invalid_arguments")
        if len(calls) > 1:
            log.info("the upstream called %s with other tools: only %s runs", built_in.name, built_in.name)
        if built_in.name == FILE_SEARCH:
            return ModelTurn(file_search_query=value)
        return ModelTurn(code=value)
    if calls:
        return ModelTurn(function_calls=tuple(FunctionCall(call.name, call.arguments) for call in calls))
    text = finished.text
    cited = [Citation(chunk.marker, chunk.file_id) for chunk in request.retrieved or () if chunk.marker in text]
    for result in request.code_results or ():
        cited += [Citation(f"sandbox:/mnt/data/{made.filename}", made.file_id, "file_path")
                  for made in result.files if f"sandbox:/mnt/data/{made.filename}" in text]
    cited.sort(key=lambda citation: text.find(citation.marker))
    incomplete = "max_completion_tokens" if finished.finish_reason == "length" else None
    return ModelTurn(text=text, citations=tuple(cited), incomplete_reason=incomplete)


def turn_request(ctx: Ctx, run: Run, prompt: Assembled, room: int | None) -> TurnRequest:
    """What the upstream is asked: the prompt the executor assembled, with this run's tool rounds."""
    asked = prompt.request
    return TurnRequest(
        model=run.model,
        instructions=run.instructions,
        messages=tuple(ConversationMessage(cast(Literal["user", "assistant"], message.role), message.text)
                       for message in asked.messages),
        tool_rounds=tool_rounds(run, store.steps_of(ctx.session, run.id)),
        tools=tuple(run.tools),
        tool_choice=run.tool_choice or "auto",
        parallel_tool_calls=run.parallel_tool_calls,
        temperature=run.temperature,
        top_p=run.top_p,
        response_format=run.response_format,
        max_completion_tokens=room,
    )


def tool_rounds(run: Run, steps: list[RunStep]) -> tuple[ToolRound, ...]:
    """The run's completed tool_calls steps, each as the calls the upstream made and what they gave back."""
    queries = (run.tool_resources or {}).get(QUERIES, {})
    code_results = iter(code_interpreter.results(run, steps) or ())
    searches = 0
    rounds = []
    for step in steps:
        if step.type != "tool_calls" or step.status != StepStatus.COMPLETED:
            continue
        calls = []
        for call in step.step_details["tool_calls"]:
            if call["type"] == "function":
                function = call["function"]
                calls.append(ToolCallOutcome(call["id"], function["name"], function["arguments"],
                                             function["output"] or ""))
            elif call["type"] == "file_search":
                passages = [(f"【{searches}:{index}†{result['file_name']}】",
                             "".join(part["text"] for part in result.get("content") or []))
                            for index, result in enumerate(call["file_search"].get("results") or [])]
                searches += 1
                calls.append(ToolCallOutcome(call["id"], FILE_SEARCH, _arguments("query", queries.get(call["id"], "")),
                                             retrieval_output(passages)))
            elif call["type"] == "code_interpreter":
                result = next(code_results, None)
                output = "" if result is None else "\n".join(
                    part for part in (result.logs, *(f"sandbox:/mnt/data/{made.filename}" for made in result.files))
                    if part)
                calls.append(ToolCallOutcome(call["id"], CODE_INTERPRETER,
                                             _arguments("code", call["code_interpreter"]["input"]),
                                             output or "(no output)"))
        if calls:
            rounds.append(ToolRound(tuple(calls)))
    return tuple(rounds)


def _arguments(name: str, value: str) -> str:
    return json.dumps({name: value}, ensure_ascii=False)


def remember_query(run: Run, call_id: str, query: str) -> None:
    """Keep a file_search call's query (the step does not show it) for the upstream's next turn."""
    state: dict[str, Any] = dict(run.tool_resources or {})
    state[QUERIES] = {**state.get(QUERIES, {}), call_id: query}
    run.tool_resources = state
