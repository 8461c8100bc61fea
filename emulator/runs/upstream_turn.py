"""A run's model call answered by the upstream: the request it is asked, the call outside the transaction, and
the answer as the `ModelTurn` the stub would have made (so steps and events are the same).

    outcome = ask(ctx, run, model, prompt, room, streaming=...)
    None            the call was made and the run re-read: call the model again, which finds the kept answer
    list of events  the run moved while the upstream answered (a cancel, an expiry): the answer is discarded
    (turn, usage)   the kept answer, taken: this transaction records it (usage None: count with tiktoken)

The call holds a worker thread while it waits (the unit of work that makes it is a runner's or a stream's; a
read leaves it to a runner and answers at once); the answer reaches a stream in the emulator's own chunks once the
turn has finished, not token by token.

Built-in tools are offered as functions (`upstream.request`); when the upstream calls one, the turn is a
file_search query or a code cell that the run executes itself. Markers the answer copies from the retrieved
passages (`【i:j†name】`) become `file_citation` annotations, `sandbox:/mnt/data/<name>` links to files the code
made `file_path` annotations, as with the stub.
"""

from __future__ import annotations

import functools
import json
import logging
from typing import Any, Literal, cast

from emulator.context import Ctx
from emulator.db import require_worker_thread
from emulator.runs import code_interpreter, leases, outside, phases
from emulator.runs.events import Event
from emulator.runs.prompt import Assembled
from emulator.runs.state import RunStatus, StepStatus
from emulator.runs.upstream_model import UpstreamModel
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


def ask(
    ctx: Ctx, run: Run, model: UpstreamModel, prompt: Assembled, room: int | None, *, streaming: bool,
    by_runner: bool = False,
) -> tuple[ModelTurn, Usage | None] | list[Event] | None:
    found, answer = outside.kept(run.id, _KEY)
    if found:
        # Taken now, not once this transaction commits: the next phase of this unit of work may call the model
        # again (after a file_search step). A rollback after this loses the answer: the upstream is asked again.
        outside.drop(run.id, _KEY)
        return _as_turn(run, answer, prompt.request)
    if not (streaming or by_runner):
        return []  # a read leaves the call to a runner (`runs.schedule`): it answers the run in_progress
    require_worker_thread("an upstream model call waits for the upstream")
    request = turn_request(ctx, run, prompt, room)
    outside.claim(ctx, run, "upstream model call", outside.HELD_SECONDS)
    renew = outside.renewer(ctx, run.id)
    outside.keep(run.id, _KEY, model.answer(run.id, request, renew=renew, every=outside.RENEW_EVERY_SECONDS))
    if not outside.reread(ctx, run):
        outside.drop(run.id, _KEY)
        return []
    if streaming:
        leases.take(run)
    else:
        leases.drop(run)
    expired = phases.expire_if_due(ctx, run)
    if expired:
        outside.drop(run.id, _KEY)
        return expired
    if run.status != RunStatus.IN_PROGRESS or run.pending_turn is not None:
        outside.drop(run.id, _KEY)
        log.info("run %s moved (%s) while the upstream answered: its answer is discarded", run.id, run.status)
        return phases.finish_cancel(ctx, run) if run.status == RunStatus.CANCELLING else []
    return None


def abort(ctx: Ctx, run_id: str) -> None:
    """The run is being cancelled: once that commits, its upstream call in this process (if any) ends."""
    if isinstance(ctx.model, UpstreamModel):
        ctx.after_commit(functools.partial(ctx.model.abort, run_id))


def _as_turn(run: Run, answer: FinishedTurn | UpstreamError | None, request: ModelRequest
             ) -> tuple[ModelTurn, Usage | None]:
    if answer is None:
        return ModelTurn(error=("server_error", "The upstream model call was aborted.")), None
    if isinstance(answer, UpstreamError):
        log.error("run %s fails: its upstream model call failed: %s", run.id, answer.message)
        return ModelTurn(error=(answer.code, answer.message)), None
    try:
        return model_turn(answer, request), answer.usage
    except UpstreamError as error:
        log.error("run %s fails: %s", run.id, error.message)
        return ModelTurn(error=(error.code, error.message)), answer.usage


def model_turn(finished: FinishedTurn, request: ModelRequest) -> ModelTurn:
    """The upstream's turn as the stub's: a built-in call, function calls, or text with its citations."""
    built_in = next((call for call in finished.tool_calls if call.name in BUILT_IN_NAMES), None)
    if built_in is not None:
        parameter = _BUILT_IN_PARAMETER[built_in.name]
        value = built_in.parsed.get(parameter)
        if not isinstance(value, str):
            raise UpstreamError("server_error", f"the upstream called {built_in.name} without a string "
                                f"{parameter!r} argument: {built_in.arguments[:200]!r}", kind="invalid_arguments")
        if len(finished.tool_calls) > 1:
            log.info("the upstream called %s with other tools: only %s runs", built_in.name, built_in.name)
        if built_in.name == FILE_SEARCH:
            return ModelTurn(file_search_query=value)
        return ModelTurn(code=value)
    if finished.tool_calls:
        return ModelTurn(function_calls=tuple(FunctionCall(call.name, call.arguments) for call in finished.tool_calls))
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
