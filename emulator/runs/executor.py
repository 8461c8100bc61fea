"""Advances runs. The only code that moves a run along (its status changes are `phases`' moves).

A run moves in phases; each phase is one call of `advance_once` inside one transaction with the run row
locked, and returns the stream events it produced:

    queued        -> in_progress (completing a tool_calls step whose outputs were submitted); before the first
                     model call, a run with file_search stays queued while its thread's files are processed
    in_progress   -> model call (`model_call`): a message_creation step and an in_progress message, or a
                     tool_calls step (`turn_steps`)
    in_progress   -> the text delivered (message deltas), step completed, run completed / incomplete
    in_progress   -> requires_action (after a tool_calls step)
    cancelling    -> cancelled (open step cancelled, open message incomplete)

A run advances when it is observed (`observe`, on every read of the run, following the progression policy),
driven by a stream (`advance_once` in a loop), or when it is due and nobody watches it (a code cell, which a read
never runs, always is): a runner in each server
process (`runner`) claims it and settles it (`settle`, with `by_runner`; `schedule` says when a run is due). A
stream holds a lease on the run while it drives it (`leases`), so a concurrent poll or runner never moves a run
under the stream's feet; a stream that dies leaves the lease to expire and a runner (or a poll) finishes the run.
"""

from __future__ import annotations

from emulator.context import Ctx
from emulator.runs import code_interpreter, file_search, leases, model_call, pending, phases, progression, turn_steps
from emulator.runs.events import Event
from emulator.runs.state import RunStatus, is_terminal
from emulator.store.rows import Run


def is_resting(run: Run) -> bool:
    """Nothing more happens to the run until a client acts (submits outputs) or it is terminal."""
    return is_terminal(run.status) or run.status == RunStatus.REQUIRES_ACTION


def observe(ctx: Ctx, run: Run) -> list[Event]:
    """A client looked at the run: apply expiry, then let it progress as far as the policy allows."""
    produced = phases.expire_if_due(ctx, run)
    if produced or is_resting(run) or leases.held(run):
        return produced
    run.observations += 1
    if not progression.parse(ctx.settings.run_progression).ready(run.observations):
        return []
    return settle(ctx, run)


def settle(ctx: Ctx, run: Run, *, by_runner: bool = False) -> list[Event]:
    """Every move the run can make now. `by_runner`: a runner (`runs.runner`) settles it, and makes an upstream
    model call or runs a code cell itself where a read leaves it to a runner; where runs are left to reads
    (`progression.left_to_reads`), it stops once the cell has run: the next read moves the run on."""
    produced: list[Event] = []
    while True:
        before = run.pending_turn
        phase = advance_once(ctx, run, by_runner=by_runner)
        if not phase and run.pending_turn == before:  # a turn that streamed in opens its step with no events
            return produced
        produced += phase
        if by_runner and pending.is_code(before) and progression.left_to_reads(ctx.settings):
            return produced


def wait_seconds(ctx: Ctx, run: Run, *, streaming: bool) -> float:
    """How long until the pending model answer is ready (0 when it is, or when there is none).

    A stream may start delivering at the first token; a polled run waits for the whole generation.
    """
    if run.status != RunStatus.IN_PROGRESS:
        return 0.0
    turn = pending.of(run)
    return 0.0 if turn is None else _wait(ctx, turn, streaming=streaming)


def _wait(ctx: Ctx, turn: pending.PendingTurn, *, streaming: bool) -> float:
    return max(0.0, turn.timing.ready_at(streaming=streaming) - ctx.precise_now)


def advance_once(ctx: Ctx, run: Run, *, streaming: bool = False, by_runner: bool = False) -> list[Event]:
    status = RunStatus(run.status)
    if status is RunStatus.CANCELLING:
        return phases.finish_cancel(ctx, run)
    if status is RunStatus.QUEUED:
        if file_search.waits_for_thread_files(ctx, run, streaming=streaming):
            return []
        return phases.start(ctx, run)
    if status is RunStatus.IN_PROGRESS:
        turn = pending.of(run)
        if turn is None:
            return model_call.call(ctx, run, streaming=streaming, by_runner=by_runner)
        if _wait(ctx, turn, streaming=streaming) > 0:
            return []
        if isinstance(turn, pending.CodeTurn):
            if not (streaming or by_runner or code_interpreter.result_waiting(run)):
                return []  # a read leaves the cell to a runner (`runs.schedule`): it answers the run in_progress
            return turn_steps.run_code(ctx, run, turn, streaming=streaming)
        if isinstance(turn, pending.TextTurn):
            return phases.deliver_text(ctx, run, turn)
        return phases.request_action(ctx, run)
    return []
