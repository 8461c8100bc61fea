"""When a run's next move is due, for the runners (`runs.runner`).

Every unit of work that may move a run ends with `plan`: it sets `runs.due_at` (wall seconds, indexed) to when the
run can next move without a client, or None when it cannot (it requires action, it has ended, or the `polls:N`
policy or a seed leaves it to reads). Once the unit of work commits, this process's runner is told (`wakeups`), so
that a run made due here is taken at once, a run due later at its time, and a run no longer due not at all; runs
made due elsewhere (another replica, a process that died) are found by the runners' sweep of the index. A due time
is wall time computed from the run's tenant's clock: a clock advance brings its runs' due times as much sooner
(`control.clocks.advance`) and wakes the runner of every process (`wakeups.ring_now`, through the hub's
`time_moved`).

A server started with `--seed` leaves runs to reads too (as `polls:N` does): the ids a run's steps and messages
get are drawn from the one seeded sequence, so who advances a run, and when, must follow the client's requests
for the same requests to give the same ids.

An upstream model call and a code cell are the runner's whatever the policy or seed: a read that reaches one
leaves it due, and answers the run `in_progress` while the runner makes the call (`upstream_turn.ask`) or runs
the cell (`executor.advance_once`). Seeded ids stay the same however often the client reads meanwhile (reads
draw only request ids, from a sequence of their own), as long as it makes nothing else until the work is done;
after a cell, the runner leaves the rest of the run to reads (`executor.settle`).
"""

from __future__ import annotations

import time

from emulator import limits
from emulator.context import Ctx
from emulator.runs import executor, pending, progression, wakeups
from emulator.runs.state import RunStatus
from emulator.runs.upstream_model import UpstreamModel
from emulator.store.rows import Run

RUNNABLE = frozenset({RunStatus.QUEUED, RunStatus.IN_PROGRESS, RunStatus.CANCELLING})
_SAME_SECONDS = 0.05
"""A due time this close to the one on record is the same one (the record is not written again)."""

def plan(ctx: Ctx, run: Run, *, stalled: bool = False) -> None:
    """Set the run's `due_at` from its state, and tell this process's runner of the change once the unit of work
    commits (unless a stream holds the run: its end does). `stalled`: a runner just found nothing to do for
    the run (its thread's files are still being processed), so it is due again a little later, not at once."""
    after = _seconds_until_due(ctx, run)
    if after is not None and stalled:
        after = max(after, limits.RUNNER_RETRY_SECONDS)
    now = time.time()
    due_at = None if after is None else now + after
    if _stands(run.due_at, due_at, now):
        return
    run.due_at = due_at
    wakeups.tell(ctx, run)


def new_run_due_at(ctx: Ctx) -> float | None:
    """A new run's `due_at` (it is queued), given by its insert, so that no update follows it: `plan` then finds
    it standing, and the code that made the run calls `wakeups.tell`."""
    if progression.left_to_reads(ctx.settings):
        return None
    return time.time() + (0.0 if isinstance(ctx.model, UpstreamModel) else limits.RUNNER_GRACE_SECONDS)


def _stands(recorded: float | None, planned: float | None, now: float) -> bool:
    """The recorded due time stays: it is the planned one (give or take `_SAME_SECONDS`, so that reads of a
    waiting run do not write it again), or the run is due at once and already was."""
    if recorded is None or planned is None:
        return recorded == planned
    return abs(recorded - planned) <= _SAME_SECONDS or recorded < planned <= now + limits.RUNNER_GRACE_SECONDS


def _seconds_until_due(ctx: Ctx, run: Run) -> float | None:
    status = RunStatus(run.status)
    if status not in RUNNABLE:
        return None
    if status is RunStatus.IN_PROGRESS and _runners_work(ctx, run):
        return 0.0
    if progression.left_to_reads(ctx.settings):
        return None
    if status is RunStatus.QUEUED and _runners_work(ctx, run):
        return 0.0
    return executor.wait_seconds(ctx, run, streaming=False) + limits.RUNNER_GRACE_SECONDS


def _runners_work(ctx: Ctx, run: Run) -> bool:
    """The run's next move is work that takes time, which reads leave to a runner: an upstream model call, or
    a code cell."""
    if run.pending_turn is None:
        return isinstance(ctx.model, UpstreamModel)
    return isinstance(pending.of(run), pending.CodeTurn)
