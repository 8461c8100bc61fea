"""The moves of a run's phases that change its status: every status change goes through `move` (and so
through `state.transition`), every step's through `move_step`. Each function changes the run's records and
returns the stream events it produced."""

from __future__ import annotations

import functools
import logging
from typing import Any

from emulator import logs
from emulator.context import Ctx
from emulator.runs import citations, events, leases, pending, wakeups
from emulator.runs.events import Event
from emulator.runs.state import EXPIRABLE, RunStatus, StepStatus, is_terminal, step_transition, transition
from emulator.schemas.messages import text_part
from emulator.store import messages as message_store
from emulator.store import runs as store
from emulator.store.rows import Message, Run, RunStep

_STEP_STAMPS = {
    StepStatus.COMPLETED: "completed_at", StepStatus.CANCELLED: "cancelled_at",
    StepStatus.EXPIRED: "expired_at", StepStatus.FAILED: "failed_at",
}


def move(ctx: Ctx, run: Run, target: RunStatus) -> None:
    """Move the run to `target`, stamping the time; a terminal run loses its pending turn, its lease and its
    thread."""
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
        run.due_at = None
        leases.drop(run)
        wakeups.tell(ctx, run)
        store.release_thread(ctx.session, run.thread_id, run.id)


def move_step(ctx: Ctx, step: RunStep, target: StepStatus) -> None:
    step.status = step_transition(step.status, target)
    setattr(step, _STEP_STAMPS[target], ctx.now)


def new_step(ctx: Ctx, run: Run, kind: str, details: dict[str, Any]) -> RunStep:
    return store.create_step(
        ctx.session, id=ctx.ids.new("step"), tenant=run.tenant, run_id=run.id, thread_id=run.thread_id,
        assistant_id=run.assistant_id, created_at=ctx.now, type=kind, status=StepStatus.IN_PROGRESS.value,
        step_details=details, metadata_={},
    )


def new_message_step(ctx: Ctx, run: Run) -> tuple[RunStep, Message]:
    """A message_creation step and its assistant message, both `in_progress` and empty."""
    message_id = ctx.ids.new("message")
    step = new_step(ctx, run, "message_creation",
                    {"type": "message_creation", "message_creation": {"message_id": message_id}})
    message = message_store.create(
        ctx.session, tenant=run.tenant, message_id=message_id, thread_id=run.thread_id, now=ctx.now,
        role="assistant", content=[], attachments=[], metadata={}, status="in_progress",
        assistant_id=run.assistant_id, run_id=run.id,
    )
    return step, message


def open_step(ctx: Ctx, run: Run) -> RunStep | None:
    return next((step for step in store.steps_of(ctx.session, run.id) if step.status == StepStatus.IN_PROGRESS), None)


def end_message(ctx: Ctx, message: Message, *, incomplete_reason: str | None = None) -> None:
    if incomplete_reason is None:
        message.status, message.completed_at = "completed", ctx.now
    else:
        message.status, message.incomplete_at = "incomplete", ctx.now
        message.incomplete_details = {"reason": incomplete_reason}


def _close_open_work(ctx: Ctx, run: Run, step_status: StepStatus, message_reason: str) -> list[Event]:
    produced: list[Event] = []
    message = store.open_message(ctx.session, run.id)
    if message is not None:
        end_message(ctx, message, incomplete_reason=message_reason)
        produced.append(events.message("incomplete", message))
    step = open_step(ctx, run)
    if step is not None:
        turn = pending.of(run)
        if step.usage is None and turn is not None and turn.step_id == step.id:
            step.usage = turn.usage  # its model call's tokens stay counted, on the step as on the run
        move_step(ctx, step, step_status)
        produced.append(events.step(step_status.value, step, ctx.include))
    return produced


def due_to_expire(ctx: Ctx, run: Run) -> bool:
    return RunStatus(run.status) in EXPIRABLE and run.expires_at is not None and ctx.now >= run.expires_at


def expire_if_due(ctx: Ctx, run: Run) -> list[Event]:
    if not due_to_expire(ctx, run):
        return []
    produced = _close_open_work(ctx, run, StepStatus.EXPIRED, "run_expired")
    run.required_action = None
    move(ctx, run, RunStatus.EXPIRED)
    return [*produced, events.run_status(run)]


def fail(ctx: Ctx, run: Run, code: str, message: str) -> list[Event]:
    """End the run `failed` with `last_error` (a model error, or an error while driving the run)."""
    produced = _close_open_work(ctx, run, StepStatus.FAILED, "run_failed")
    run.last_error = {"code": code, "message": message}
    run.required_action = None
    move(ctx, run, RunStatus.FAILED)
    return [*produced, events.run_status(run)]


def fail_without_work(ctx: Ctx, run: Run, code: str, message: str) -> list[Event]:
    """End the run `failed` before its model call opened any step (a prompt that cannot be sent)."""
    run.last_error = {"code": code, "message": message}
    move(ctx, run, RunStatus.FAILED)
    return [events.run_status(run)]


def end_incomplete(ctx: Ctx, run: Run, reason: str) -> list[Event]:
    run.incomplete_details = {"reason": reason}
    move(ctx, run, RunStatus.INCOMPLETE)
    return [events.run_status(run)]


def request_cancel(ctx: Ctx, run: Run) -> list[Event]:
    move(ctx, run, RunStatus.CANCELLING)
    run.required_action = None
    return [events.run_status(run)]


def finish_cancel(ctx: Ctx, run: Run) -> list[Event]:
    produced = [events.run_status(run), *_close_open_work(ctx, run, StepStatus.CANCELLED, "run_cancelled")]
    move(ctx, run, RunStatus.CANCELLED)
    return [*produced, events.run_status(run)]


def accept_tool_outputs(ctx: Ctx, run: Run, outputs: dict[str, str]) -> list[Event]:
    """Record the outputs on the open tool_calls step; the run goes back to `queued`."""
    step = open_step(ctx, run)
    assert step is not None and step.type == "tool_calls"
    calls = []
    for call in step.step_details["tool_calls"]:
        if call["type"] == "function":
            call = {**call, "function": {**call["function"], "output": outputs[call["id"]]}}
        calls.append(call)
    step.step_details = {**step.step_details, "tool_calls": calls}
    run.required_action = None
    move(ctx, run, RunStatus.QUEUED)
    return [events.run_status(run)]


def start(ctx: Ctx, run: Run) -> list[Event]:
    """`queued` -> `in_progress`; function calls whose outputs came complete their step."""
    move(ctx, run, RunStatus.IN_PROGRESS)
    run.started_at = run.started_at or ctx.now
    produced = [events.run_status(run)]
    turn = pending.of(run)
    if isinstance(turn, pending.FunctionCallsTurn):
        step = open_step(ctx, run)
        if step is not None:
            step.usage = turn.usage
            move_step(ctx, step, StepStatus.COMPLETED)
            produced.append(events.step("completed", step, ctx.include))
        run.pending_turn = None
    return produced


def deliver_text(ctx: Ctx, run: Run, turn: pending.TextTurn) -> list[Event]:
    """The answer's text as message deltas; the message and its step complete, and the run (or it ends
    `incomplete` when the text was cut)."""
    message = message_store.get(ctx.session, run.tenant, run.thread_id, turn.message_id)
    step = store.get_step(ctx.session, run.id, turn.step_id)
    found = citations.locate(turn.text, turn.citations)
    images = [{"type": "image_file", "image_file": {"file_id": file_id, "detail": "auto"}} for file_id in turn.images]
    if turn.streamed:  # the text went out as it arrived: only its annotations are news
        produced = [events.message_delta(message.id, "", first=False, annotations=events.numbered(found))] if found \
            else []
    else:
        produced = events.text_deltas(message.id, events.chunks(turn.text, turn.chunk_size), found)
    produced += [events.content_delta(message.id, index, part) for index, part in enumerate(images, start=1)]
    message.content = [text_part(turn.text, found), *images]
    end_message(ctx, message, incomplete_reason="max_tokens" if turn.truncated else None)
    produced.append(events.message(message.status, message))
    step.usage = turn.usage
    move_step(ctx, step, StepStatus.COMPLETED)
    produced.append(events.step("completed", step, ctx.include))
    if turn.truncated:
        return [*produced, *end_incomplete(ctx, run, "max_completion_tokens")]
    move(ctx, run, RunStatus.COMPLETED)
    return [*produced, events.run_status(run)]


def request_action(ctx: Ctx, run: Run) -> list[Event]:
    """The open step's function calls are ready: the run requires their outputs."""
    step = open_step(ctx, run)
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
    move(ctx, run, RunStatus.REQUIRES_ACTION)
    return [events.run_status(run)]
