"""The step a model turn opens, by kind of turn: a message_creation step with its in_progress message (text),
a tool_calls step awaiting outputs (function calls), or a tool_calls step of a built-in tool, which the run
completes itself (file_search at once; code_interpreter in the next phase, `run_code`)."""

from __future__ import annotations

import logging
from typing import Any

from emulator.context import Ctx
from emulator.runs import code_interpreter, events, file_search, leases, pending, phases, upstream_turn
from emulator.runs.events import Event
from emulator.runs.live import LiveTurn
from emulator.runs.pending import Timing, Usage
from emulator.runs.state import RunStatus, StepStatus
from emulator.runs.upstream_model import UpstreamModel
from emulator.store import runs as store
from emulator.store.rows import Run
from emulator.stub_model import FunctionCall

log = logging.getLogger("emulator.runs")


def _no_calls() -> dict[str, Any]:
    """As on the hosted API, a tool_calls step opens with no calls and gains them through its deltas: the SDKs
accumulate the deltas onto the opening snapshot, so a call in both would come out doubled."""
    return {"type": "tool_calls", "tool_calls": []}


def open_message(ctx: Ctx, run: Run, timing: Timing, usage: Usage, text: str, *, truncated: bool,
                 chunk_size: int | None, cited: list[dict[str, str]], images: list[str],
                 live: LiveTurn | None = None) -> list[Event]:
    """A message_creation step and its in_progress message; the text is delivered once it is ready. A turn that
    streamed in (`live`) opened both as it arrived, and its text went out as it came."""
    if live is not None and live.opened_message is not None and live.step_id is not None:
        pending.put(run, pending.TextTurn(live.step_id, usage, timing, live.opened_message, text, truncated,
                                          chunk_size, cited, images, streamed=True))
        return []
    step, message = phases.new_message_step(ctx, run)
    pending.put(run, pending.TextTurn(step.id, usage, timing, message.id, text, truncated, chunk_size, cited,
                                      images))
    return [events.step("created", step, ctx.include), events.step("in_progress", step, ctx.include),
            events.message("created", message), events.message("in_progress", message)]


def open_function_calls(
    ctx: Ctx, run: Run, timing: Timing, usage: Usage, calls: tuple[FunctionCall, ...], live: LiveTurn | None = None
) -> list[Event]:
    """A tool_calls step with the calls; the run requires their outputs once they are ready. A turn that streamed
    in (`live`) opened the step and sent the calls' deltas as they arrived (and now sends what they lacked: the
    `{}` of a call without arguments)."""
    opened = None if live is None else live.opened_calls
    ids = live.call_ids() if opened is not None and live is not None else []
    tool_calls = [
        {"id": ids[index] if index < len(ids) else ctx.ids.new("call"), "type": "function",
         "function": {"name": call.name, "arguments": call.arguments, "output": None}}
        for index, call in enumerate(calls)
    ]
    if opened is not None:
        step = store.get_step(ctx.session, run.id, opened)
        step.step_details = {"type": "tool_calls", "tool_calls": tool_calls}
        pending.put(run, pending.FunctionCallsTurn(step.id, usage, timing))
        return [] if live is None else live.close_calls()
    step = phases.new_step(ctx, run, "tool_calls", _no_calls())
    produced = [events.step("created", step, ctx.include), events.step("in_progress", step, ctx.include)]
    step.step_details = {"type": "tool_calls", "tool_calls": tool_calls}
    pending.put(run, pending.FunctionCallsTurn(step.id, usage, timing))
    produced += [events.tool_call_delta(step.id, index, call) for index, call in enumerate(tool_calls)]
    return produced


def search_files(ctx: Ctx, run: Run, usage: Usage, query: str) -> list[Event]:
    """file_search runs inside the run (no `requires_action`): the step opens, the search runs, the step
    completes. Its one delta carries the call's id and type, as on the API."""
    step = phases.new_step(ctx, run, "tool_calls", _no_calls())
    produced = [events.step("created", step, ctx.include), events.step("in_progress", step, ctx.include)]
    call = file_search.execute(ctx, run, query, ctx.ids.new("call"))
    if isinstance(ctx.model, UpstreamModel):
        upstream_turn.remember_query(run, call["id"], query)
    step.step_details = {"type": "tool_calls", "tool_calls": [call]}
    produced.append(events.tool_call_delta(step.id, 0, {"id": call["id"], "type": "file_search", "file_search": {}}))
    step.usage = usage
    phases.move_step(ctx, step, StepStatus.COMPLETED)
    produced.append(events.step("completed", step, ctx.include))
    return produced


def open_code_call(ctx: Ctx, run: Run, usage: Usage, code: str) -> list[Event]:
    """The code call's step opens with its input; the cell runs in the next phase (`run_code`)."""
    step = phases.new_step(ctx, run, "tool_calls", _no_calls())
    produced = [events.step("created", step, ctx.include), events.step("in_progress", step, ctx.include)]
    call = code_interpreter.open_call(ctx.ids.new("call"), code)
    step.step_details = {"type": "tool_calls", "tool_calls": [call]}
    produced.append(events.tool_call_delta(step.id, 0, call))
    pending.put(run, pending.CodeTurn(step.id, usage, code, call["id"]))
    code_interpreter.start_billing(run)
    return produced


def run_code(ctx: Ctx, run: Run, turn: pending.CodeTurn, *, streaming: bool) -> list[Event]:
    """Run the cell with no transaction open (`code_interpreter.run`), then complete its step; a sandbox that
    fails fails the call and the run (`server_error`). A run cancelled meanwhile is cancelled now. The result
    commits at once: whatever else the request does (a 404 after the read, a retry) cannot lose it and run the
    cell again. The cell's claim ends with it: a stream driving the run holds its own lease again, a runner none
    (not even the lease of a dead claimant whose cell it resumed). A read never gets here (`executor`): it leaves
    the cell to a runner, unless this process keeps the cell's result for it to record."""
    outcome = code_interpreter.run(ctx, run, turn.code, turn.call_id)
    if streaming:
        leases.take(run)
    else:
        leases.drop(run)
    if not outcome.current:
        produced = phases.finish_cancel(ctx, run) if run.status == RunStatus.CANCELLING else []
    else:
        produced = _complete_code_step(ctx, run, turn, outcome)
    code_interpreter.commit_result(ctx, run, turn.call_id)
    return produced


def _complete_code_step(
    ctx: Ctx, run: Run, turn: pending.CodeTurn, outcome: code_interpreter.Outcome
) -> list[Event]:
    step = store.get_step(ctx.session, run.id, turn.step_id)
    if outcome.execution is None:
        message = outcome.failure or "the code_interpreter sandbox failed"
        log.error("run %s: code_interpreter call %s failed: %s", run.id, turn.call_id, message)
        step.last_error = {"code": "server_error", "message": message}
        return phases.fail(ctx, run, "server_error", message)
    step.step_details = {"type": "tool_calls", "tool_calls": [
        code_interpreter.record(ctx, run, turn.code, turn.call_id, outcome.execution)
    ]}
    step.usage = turn.usage
    run.pending_turn = None
    phases.move_step(ctx, step, StepStatus.COMPLETED)
    return [events.step("completed", step, ctx.include)]
