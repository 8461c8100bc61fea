"""Advances runs. The only code that changes a run's status (always through `state.transition`).

A run moves in phases; each phase is one call of `advance_once` inside one transaction with the run row
locked, and returns the stream events it produced:

    queued        -> in_progress (completing a tool_calls step whose outputs were submitted); before the first
                     model call, a run with file_search stays queued while its thread's files are processed
    in_progress   -> model call: a message_creation step and an in_progress message, or a tool_calls step
    in_progress   -> the text delivered (message deltas), step completed, run completed / incomplete
    in_progress   -> requires_action (after a tool_calls step)
    cancelling    -> cancelled (open step cancelled, open message incomplete)

There is no background worker: a run advances when it is observed (`observe`, on every read of the run,
following the progression policy) or driven by a stream (`advance_once` in a loop). A stream holds a lease
on the run while it drives it, so a concurrent poll never moves a run under the stream's feet; a stream that
dies leaves the lease to expire and the next poll finishes the run.
"""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Callable
from typing import Any

from emulator import logs, model_catalog, tokens
from emulator.context import Ctx
from emulator.control import latency, ratelimits
from emulator.errors import RateLimited
from emulator.runs import annotations, code_interpreter, events, file_search, scripts
from emulator.runs.events import Event
from emulator.runs.prompt import DoesNotFit, assemble, completed_tool_calls
from emulator.runs.state import EXPIRABLE, RunStatus, StepStatus, is_terminal, step_transition, transition
from emulator.schemas.messages import text_part
from emulator.store import messages as message_store
from emulator.store import runs as store
from emulator.store.messages import Message
from emulator.store.runs import Run, Step
from emulator.stub_model import FunctionCall, ModelTurn, ToolResult

log = logging.getLogger("emulator.runs")

LEASE_SECONDS = 30.0
_DELTA_CHUNK = re.compile(r"\s*\S+|\s+$")


def lease_held(run: Run) -> bool:
    """A stream drives the run, or a server process runs its code cell (unless that process is gone)."""
    return (run.lease_until is not None and run.lease_until > time.time() and not code_interpreter.claim_orphaned(run)
            and not code_interpreter.result_waiting(run))


def take_lease(run: Run) -> None:
    run.lease_until = time.time() + LEASE_SECONDS


def drop_lease(run: Run) -> None:
    run.lease_until = None


def is_resting(run: Run) -> bool:
    """Nothing more happens to the run until a client acts (submits outputs) or it is terminal."""
    return is_terminal(run.status) or run.status == RunStatus.REQUIRES_ACTION


def progression_ready(ctx: Ctx, run: Run) -> bool:
    policy = ctx.settings.run_progression
    if policy == "immediate":
        return True
    return run.observations >= int(policy.split(":", 1)[1])


def observe(ctx: Ctx, run: Run) -> list[Event]:
    """A client looked at the run: apply expiry, then let it progress as far as the policy allows."""
    produced = expire_if_due(ctx, run)
    if produced or is_resting(run) or lease_held(run):
        return produced
    run.observations += 1
    if not progression_ready(ctx, run):
        return []
    return settle(ctx, run)


def settle(ctx: Ctx, run: Run) -> list[Event]:
    produced: list[Event] = []
    while phase := advance_once(ctx, run):
        produced += phase
    return produced


def wait_seconds(ctx: Ctx, run: Run, *, streaming: bool) -> float:
    """How long until the pending model answer is ready (0 when it is, or when there is none).

    A stream may start delivering at the first token; a polled run waits for the whole generation.
    """
    turn = run.pending_turn
    if run.status != RunStatus.IN_PROGRESS or turn is None:
        return 0.0
    ready_at = turn.get("first_token_at" if streaming else "done_at", 0.0)
    return max(0.0, ready_at - ctx.precise_now)


def advance_once(ctx: Ctx, run: Run, *, streaming: bool = False) -> list[Event]:
    status = RunStatus(run.status)
    if status is RunStatus.CANCELLING:
        return _finish_cancel(ctx, run)
    if status is RunStatus.QUEUED:
        if file_search.waits_for_thread_files(ctx, run, streaming=streaming):
            return []
        return _start(ctx, run)
    if status is RunStatus.IN_PROGRESS:
        turn = run.pending_turn
        if turn is None:
            return _call_model(ctx, run)
        if wait_seconds(ctx, run, streaming=streaming) > 0:
            return []
        if turn["kind"] == "code":
            return _run_code(ctx, run, turn, streaming=streaming)
        if turn["kind"] == "text":
            return _deliver_text(ctx, run, turn)
        return _request_action(ctx, run)
    return []


def expire_if_due(ctx: Ctx, run: Run) -> list[Event]:
    if RunStatus(run.status) not in EXPIRABLE or run.expires_at is None or ctx.now < run.expires_at:
        return []
    produced = _close_open_work(ctx, run, StepStatus.EXPIRED, "run_expired")
    run.required_action = None
    _move(ctx, run, RunStatus.EXPIRED)
    return [*produced, events.run_status(run)]


def fail(ctx: Ctx, run: Run, code: str, message: str) -> list[Event]:
    """End the run `failed` with `last_error` (a model error, or an error while driving the run)."""
    produced = _close_open_work(ctx, run, StepStatus.FAILED, "run_failed")
    run.last_error = {"code": code, "message": message}
    run.required_action = None
    _move(ctx, run, RunStatus.FAILED)
    return [*produced, events.run_status(run)]


def request_cancel(ctx: Ctx, run: Run) -> list[Event]:
    _move(ctx, run, RunStatus.CANCELLING)
    run.required_action = None
    return [events.run_status(run)]


def accept_tool_outputs(ctx: Ctx, run: Run, outputs: dict[str, str]) -> list[Event]:
    """Record the outputs on the open tool_calls step; the run goes back to `queued`."""
    step = _open_step(ctx, run)
    assert step is not None and step.type == "tool_calls"
    calls = []
    for call in step.step_details["tool_calls"]:
        if call["type"] == "function":
            call = {**call, "function": {**call["function"], "output": outputs[call["id"]]}}
        calls.append(call)
    step.step_details = {**step.step_details, "tool_calls": calls}
    run.required_action = None
    _move(ctx, run, RunStatus.QUEUED)
    return [events.run_status(run)]


def _move(ctx: Ctx, run: Run, target: RunStatus) -> None:
    before = run.status
    run.status = transition(run.status, target)
    if logs.runs.isEnabledFor(logging.INFO):  # once committed: a unit of work that is retried logs once
        ctx.after_commit(functools.partial(logs.run_moved, run.id, run.thread_id, before, target.value))
    if target is RunStatus.COMPLETED:
        run.completed_at = ctx.now
    elif target is RunStatus.CANCELLED:
        run.cancelled_at = ctx.now
    elif target is RunStatus.FAILED:
        run.failed_at = ctx.now
    if is_terminal(target):
        run.pending_turn = None
        drop_lease(run)
        store.release_thread(ctx.session, run.thread_id, run.id)


def _move_step(ctx: Ctx, step: Step, target: StepStatus) -> None:
    step.status = step_transition(step.status, target)
    stamp = {
        StepStatus.COMPLETED: "completed_at", StepStatus.CANCELLED: "cancelled_at",
        StepStatus.EXPIRED: "expired_at", StepStatus.FAILED: "failed_at",
    }[target]
    setattr(step, stamp, ctx.now)


def _open_step(ctx: Ctx, run: Run) -> Step | None:
    return next((step for step in store.steps_of(ctx.session, run.id) if step.status == StepStatus.IN_PROGRESS), None)


def _close_open_work(ctx: Ctx, run: Run, step_status: StepStatus, message_reason: str) -> list[Event]:
    produced: list[Event] = []
    message = store.open_message(ctx.session, run.id)
    if message is not None:
        _end_message(ctx, message, incomplete_reason=message_reason)
        produced.append(events.message("incomplete", message))
    step = _open_step(ctx, run)
    if step is not None:
        turn = run.pending_turn or {}
        if step.usage is None and turn.get("step_id") == step.id:
            step.usage = turn["usage"]  # its model call's tokens stay counted, on the step as on the run
        _move_step(ctx, step, step_status)
        produced.append(events.step(step_status.value, step, ctx.include))
    return produced


def _end_message(ctx: Ctx, message: Message, *, incomplete_reason: str | None = None) -> None:
    if incomplete_reason is None:
        message.status, message.completed_at = "completed", ctx.now
    else:
        message.status, message.incomplete_at = "incomplete", ctx.now
        message.incomplete_details = {"reason": incomplete_reason}


def _finish_cancel(ctx: Ctx, run: Run) -> list[Event]:
    produced = [events.run_status(run), *_close_open_work(ctx, run, StepStatus.CANCELLED, "run_cancelled")]
    _move(ctx, run, RunStatus.CANCELLED)
    return [*produced, events.run_status(run)]


def _start(ctx: Ctx, run: Run) -> list[Event]:
    _move(ctx, run, RunStatus.IN_PROGRESS)
    run.started_at = run.started_at or ctx.now
    produced = [events.run_status(run)]
    turn = run.pending_turn
    if turn is not None and turn["kind"] == "tool_calls":
        step = _open_step(ctx, run)
        if step is not None:
            step.usage = turn["usage"]
            _move_step(ctx, step, StepStatus.COMPLETED)
            produced.append(events.step("completed", step, ctx.include))
        run.pending_turn = None
    return produced


def _tool_results(steps: list[Step]) -> list[ToolResult]:
    return [
        ToolResult(call["id"], call["function"]["name"], call["function"]["arguments"], call["function"]["output"])
        for call in completed_tool_calls(steps, "function")
    ]


def _prompt_budget(run: Run, window: int) -> int:
    if run.max_prompt_tokens is None:
        return window
    return min(window, run.max_prompt_tokens - run.prompt_tokens)


def _call_model(ctx: Ctx, run: Run) -> list[Event]:
    info = model_catalog.info_or_fallback(run.model)
    history = store.thread_history(ctx.session, run.thread_id)
    budget = _prompt_budget(run, info.context_window)
    searchable = file_search.store_ids(ctx, run)
    steps = store.steps_of(ctx.session, run.id)
    prompt = assemble(
        run, history, _tool_results(steps), encoding=info.encoding, budget=budget,
        retrieved=file_search.retrieved(steps), can_search=bool(searchable),
        code_results=code_interpreter.results(run, steps), can_run_code=code_interpreter.available(run),
    )
    if isinstance(prompt, DoesNotFit):
        return _prompt_does_not_fit(ctx, run, prompt, info.context_window)
    scripted = scripts.pick(ctx, run, prompt.request)
    turn, delay = scripted.turn or ctx.model.respond(prompt.request), scripted.delay
    completion_tokens = _completion_tokens(turn, info.encoding)
    refusal = _charge_model_call(ctx, run, prompt.prompt_tokens + completion_tokens)
    if refusal is not None:
        return fail(ctx, run, "rate_limit_exceeded", refusal)
    snapshot = scripts.request_snapshot(prompt.request, prompt.prompt_tokens, prompt.dropped_messages)
    scripts.consume(ctx, run, scripted, snapshot)
    run.prompt_tokens += prompt.prompt_tokens
    if turn.error is not None:
        return fail(ctx, run, *turn.error)
    if turn.incomplete_reason == "max_prompt_tokens":
        return _end_incomplete(ctx, run, "max_prompt_tokens")
    remaining = None if run.max_completion_tokens is None else run.max_completion_tokens - run.completion_tokens
    if remaining is not None and completion_tokens > remaining and turn.function_calls:
        run.completion_tokens += remaining
        return _end_incomplete(ctx, run, "max_completion_tokens")
    text, truncated = turn.text, turn.incomplete_reason is not None
    if remaining is not None and completion_tokens > remaining and text is not None:
        text = tokens.decode(tokens.encode(text, info.encoding)[:remaining], info.encoding)
        completion_tokens, truncated = remaining, True
    run.completion_tokens += completion_tokens
    usage = {"prompt_tokens": prompt.prompt_tokens, "completion_tokens": completion_tokens,
             "total_tokens": prompt.prompt_tokens + completion_tokens}
    profile = latency.profile(ctx, run.model)
    first_token_at = ctx.precise_now + delay + profile.ttft_seconds
    timing = {"first_token_at": first_token_at,
              "done_at": first_token_at + profile.generation_seconds(completion_tokens),
              "delta_pause": 1 / profile.tokens_per_second if profile.tokens_per_second else 0.0}
    if turn.file_search_query is not None:
        query = turn.file_search_query
        return _builtin_tool_step(
            ctx, run, usage, "file_search", lambda call_id: file_search.execute(ctx, run, query, call_id)
        )
    if turn.code is not None:
        return _open_code_step(ctx, run, turn.code, usage)
    if text is not None:
        extra = {"chunk_size": turn.chunk_size, "citations": annotations.of_turn(turn.citations),
                 "images": list(turn.images)}
        return _open_message_step(ctx, run, text, truncated, usage, {**timing, **extra})
    return _open_tool_calls_step(ctx, run, turn.function_calls, usage, timing)


def _builtin_tool_step(
    ctx: Ctx, run: Run, usage: dict[str, int], kind: str, execute: Callable[[str], dict[str, Any]]
) -> list[Event]:
    """file_search runs inside the run (no `requires_action`): the step opens, the tool runs, the step
    completes. Its one delta carries the call's id and type, as on the API. (code_interpreter: `_run_code`.)"""
    step = _new_step(ctx, run, "tool_calls", {"type": "tool_calls", "tool_calls": []})
    produced = [events.step("created", step, ctx.include), events.step("in_progress", step, ctx.include)]
    call = execute(ctx.ids.new("call"))
    step.step_details = {"type": "tool_calls", "tool_calls": [call]}
    produced.append(events.tool_call_delta(step.id, 0, {"id": call["id"], "type": kind, kind: {}}))
    step.usage = usage
    _move_step(ctx, step, StepStatus.COMPLETED)
    produced.append(events.step("completed", step, ctx.include))
    return produced


def _open_code_step(ctx: Ctx, run: Run, code: str, usage: dict[str, int]) -> list[Event]:
    """The code call's step opens with its input; the cell runs in the next phase (`_run_code`)."""
    step = _new_step(ctx, run, "tool_calls", {"type": "tool_calls", "tool_calls": []})
    produced = [events.step("created", step, ctx.include), events.step("in_progress", step, ctx.include)]
    call = code_interpreter.open_call(ctx.ids.new("call"), code)
    step.step_details = {"type": "tool_calls", "tool_calls": [call]}
    produced.append(events.tool_call_delta(step.id, 0, call))
    run.pending_turn = {"kind": "code", "code": code, "call_id": call["id"], "step_id": step.id, "usage": usage}
    code_interpreter.start_billing(run)
    return produced


def _run_code(ctx: Ctx, run: Run, turn: dict[str, Any], *, streaming: bool) -> list[Event]:
    """Run the cell with no transaction open (`code_interpreter.run`), then complete its step; a sandbox that
    fails fails the call and the run (`server_error`). A run cancelled meanwhile is cancelled now. The result
    commits at once: whatever else the request does (a 404 after the read, a retry) cannot lose it and run the
    cell again. The cell's claim ends with it: a stream driving the run holds its own lease again, a poll none
    (not even the lease of a dead claimant whose cell it resumed)."""
    outcome = code_interpreter.run(ctx, run, turn["code"], turn["call_id"])
    if streaming:
        take_lease(run)
    else:
        drop_lease(run)
    if not outcome.current:
        produced = _finish_cancel(ctx, run) if run.status == RunStatus.CANCELLING else []
    else:
        produced = _complete_code_step(ctx, run, turn, outcome)
    code_interpreter.commit_result(ctx, run, turn["call_id"])
    return produced


def _complete_code_step(ctx: Ctx, run: Run, turn: dict[str, Any], outcome: code_interpreter.Outcome) -> list[Event]:
    step = store.get_step(ctx.session, run.id, turn["step_id"])
    if outcome.execution is None:
        message = outcome.failure or "the code_interpreter sandbox failed"
        log.error("run %s: code_interpreter call %s failed: %s", run.id, turn["call_id"], message)
        step.last_error = {"code": "server_error", "message": message}
        return fail(ctx, run, "server_error", message)
    step.step_details = {"type": "tool_calls", "tool_calls": [
        code_interpreter.record(ctx, run, turn["code"], turn["call_id"], outcome.execution)
    ]}
    step.usage = turn["usage"]
    run.pending_turn = None
    _move_step(ctx, step, StepStatus.COMPLETED)
    return [events.step("completed", step, ctx.include)]


def _charge_model_call(ctx: Ctx, run: Run, total_tokens: int) -> str | None:
    """Count the call against the tenant's per-model limits; the refusal text when it goes over."""
    limit = ratelimits.model_call_limit(ctx.session, ctx.tenant, run.model)
    if limit is None:
        return None
    try:
        ratelimits.charge(ctx.session, ctx.tenant, f"model:{run.model}", limit, ctx.now, tokens=total_tokens)
    except RateLimited as refused:
        return refused.message
    return None


def _completion_tokens(turn: ModelTurn, encoding: str) -> int:
    if turn.text is not None:
        return tokens.count(turn.text, encoding)
    if turn.file_search_query is not None:
        return tokens.count(turn.file_search_query, encoding)
    if turn.code is not None:
        return tokens.count(turn.code, encoding)
    return sum(tokens.count(call.name + call.arguments, encoding) for call in turn.function_calls)


def _prompt_does_not_fit(ctx: Ctx, run: Run, prompt: DoesNotFit, window: int) -> list[Event]:
    if run.max_prompt_tokens is not None and prompt.budget < window:
        return _end_incomplete(ctx, run, "max_prompt_tokens")
    run.last_error = {
        "code": "invalid_prompt",
        "message": f"The prompt ({prompt.prompt_tokens} tokens) exceeds the model's context window of {window} "
        "tokens; use truncation_strategy 'auto' or fewer messages.",
    }
    _move(ctx, run, RunStatus.FAILED)
    return [events.run_status(run)]


def _end_incomplete(ctx: Ctx, run: Run, reason: str) -> list[Event]:
    run.incomplete_details = {"reason": reason}
    _move(ctx, run, RunStatus.INCOMPLETE)
    return [events.run_status(run)]


def _new_step(ctx: Ctx, run: Run, kind: str, details: dict[str, Any]) -> Step:
    return store.create_step(
        ctx.session, id=ctx.ids.new("step"), tenant=run.tenant, run_id=run.id, thread_id=run.thread_id,
        assistant_id=run.assistant_id, created_at=ctx.now, type=kind, status=StepStatus.IN_PROGRESS.value,
        step_details=details, metadata_={},
    )


def _open_message_step(
    ctx: Ctx, run: Run, text: str, truncated: bool, usage: dict[str, int], timing: dict[str, Any]
) -> list[Event]:
    message_id = ctx.ids.new("message")
    step = _new_step(ctx, run, "message_creation",
                     {"type": "message_creation", "message_creation": {"message_id": message_id}})
    message = message_store.create(
        ctx.session, tenant=run.tenant, message_id=message_id, thread_id=run.thread_id, now=ctx.now,
        role="assistant", content=[], attachments=[], metadata={}, status="in_progress",
        assistant_id=run.assistant_id, run_id=run.id,
    )
    run.pending_turn = {"kind": "text", "text": text, "truncated": truncated, "usage": usage,
                        "message_id": message_id, "step_id": step.id, **timing}
    return [events.step("created", step, ctx.include), events.step("in_progress", step, ctx.include),
            events.message("created", message), events.message("in_progress", message)]


def _open_tool_calls_step(
    ctx: Ctx, run: Run, calls: tuple[FunctionCall, ...], usage: dict[str, int], timing: dict[str, Any]
) -> list[Event]:
    tool_calls = [
        {"id": ctx.ids.new("call"), "type": "function",
         "function": {"name": call.name, "arguments": call.arguments, "output": None}}
        for call in calls
    ]
    # As on the hosted API, the step opens with no calls and gains them through its deltas: the SDKs
    # accumulate the deltas onto the opening snapshot, so a call in both would come out doubled.
    step = _new_step(ctx, run, "tool_calls", {"type": "tool_calls", "tool_calls": []})
    produced = [events.step("created", step, ctx.include), events.step("in_progress", step, ctx.include)]
    step.step_details = {"type": "tool_calls", "tool_calls": tool_calls}
    run.pending_turn = {"kind": "tool_calls", "usage": usage, "step_id": step.id, **timing}
    produced += [events.tool_call_delta(step.id, index, call) for index, call in enumerate(tool_calls)]
    return produced


def _deliver_text(ctx: Ctx, run: Run, turn: dict[str, Any]) -> list[Event]:
    message = message_store.get(ctx.session, run.tenant, run.thread_id, turn["message_id"])
    step = store.get_step(ctx.session, run.id, turn["step_id"])
    text: str = turn["text"]
    size = turn.get("chunk_size")
    chunks = [text[i : i + size] for i in range(0, len(text), size)] if size else _DELTA_CHUNK.findall(text)
    chunks = chunks or [text]
    found = annotations.locate(text, turn.get("citations") or [])
    images = [{"type": "image_file", "image_file": {"file_id": file_id, "detail": "auto"}}
              for file_id in turn.get("images") or []]
    produced = _text_deltas(message.id, chunks, found)
    produced += [events.content_delta(message.id, index, part) for index, part in enumerate(images, start=1)]
    message.content = [text_part(text, found), *images]
    _end_message(ctx, message, incomplete_reason="max_tokens" if turn["truncated"] else None)
    produced.append(events.message(message.status, message))
    step.usage = turn["usage"]
    _move_step(ctx, step, StepStatus.COMPLETED)
    produced.append(events.step("completed", step, ctx.include))
    if turn["truncated"]:
        return [*produced, *_end_incomplete(ctx, run, "max_completion_tokens")]
    _move(ctx, run, RunStatus.COMPLETED)
    return [*produced, events.run_status(run)]


def _text_deltas(message_id: str, chunks: list[str], found: list[dict[str, Any]]) -> list[Event]:
    """One delta per chunk; each annotation rides on the delta in which its marker ends."""
    produced = []
    offset = 0
    for index, chunk in enumerate(chunks):
        offset += len(chunk)
        completed = [
            {"index": number, **annotation}
            for number, annotation in enumerate(found)
            if offset - len(chunk) < annotation["end_index"] <= offset
        ]
        produced.append(events.message_delta(message_id, chunk, first=index == 0, annotations=completed))
    return produced


def _request_action(ctx: Ctx, run: Run) -> list[Event]:
    step = _open_step(ctx, run)
    assert step is not None
    run.required_action = {
        "type": "submit_tool_outputs",
        "submit_tool_outputs": {
            "tool_calls": [
                {"id": call["id"], "type": "function",
                 "function": {"name": call["function"]["name"], "arguments": call["function"]["arguments"]}}
                for call in step.step_details["tool_calls"]
                if call["type"] == "function"
            ]
        },
    }
    _move(ctx, run, RunStatus.REQUIRES_ACTION)
    return [events.run_status(run)]
