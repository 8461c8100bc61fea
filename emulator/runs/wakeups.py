"""How this process's units of work tell its runner (`runs.runner`) when runs are due: a run's due time once the
unit of work that set it has committed (`schedule.plan`, a new run, a run's end), None when a run is no longer due
(its runner then lets the time pass without a claim), and a bare time when runs may be due then (a stream let its
run go, a clock moved). A run a stream holds is the stream's: its end tells."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

from emulator.context import Ctx
from emulator.runs import leases
from emulator.store.rows import Run

Listener = Callable[[float | None, str], None]
"""`listener(due_at, run_id)`, called from any thread; `run_id` is "" for a bare time."""

_listener: Listener | None = None


def listen(listener: Listener | None) -> None:
    """The process's runner listens (None: nobody does)."""
    global _listener
    _listener = listener


def tell(ctx: Ctx, run: Run) -> None:
    """Tell the runner of the run's due time, or that it is not due any more, once the unit of work commits."""
    listener = _listener
    if listener is not None and not leases.held(run):
        ctx.after_commit(functools.partial(listener, run.due_at, run.id))


def ring(due_at: float) -> None:
    """Tell the runner that runs may be due at `due_at` (wall seconds)."""
    listener = _listener
    if listener is not None:
        listener(due_at, "")


def ring_now() -> None:
    """Tell the runner to look for due runs now (a clock moved: runs may have become due)."""
    ring(time.time())
