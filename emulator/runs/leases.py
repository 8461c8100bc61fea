"""A run's lease: while it holds, whoever took it (a stream, or a server process running the run's code cell)
moves the run, and a poll leaves it alone. A stream that dies leaves its lease to expire."""

from __future__ import annotations

import time

from emulator import limits
from emulator.runs import code_interpreter, outside
from emulator.store.rows import Run


def held(run: Run) -> bool:
    """A stream drives the run, or a server process runs its code cell (unless that process is gone)."""
    return (run.lease_until is not None and run.lease_until > time.time() and not code_interpreter.claim_orphaned(run)
            and not outside.waiting(run))


def take(run: Run) -> None:
    """Hold the run for a stream: `limits.RUN_STREAM_LEASE_SECONDS`, renewed while the stream waits
    (`runs.waiting`) and at each of its phases."""
    run.lease_until = stream_lease_until()


def stream_lease_until() -> float:
    """When a stream's lease taken now runs out (`take`; a new streamed run is inserted with it)."""
    return time.time() + limits.RUN_STREAM_LEASE_SECONDS


def drop(run: Run) -> None:
    run.lease_until = None
