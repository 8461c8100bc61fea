"""Where a unit of work runs: on the event loop's lane when it can, else in a worker thread.

    result = await lanes.run(db, work, write=True)

On SQLite the lane runs the unit of work on the event loop itself (`db.InlineLane`); on PostgreSQL, on the loop
with each statement awaited (`awaiting_lane.AwaitingLane`). When it would block (the SQLite writer lock is taken,
a code cell, an upstream call, a conflict with another transaction) it leaves the lane, rolled back, and runs
again in a worker thread, after committing the record its attempt on the lane asked for (`RecordThenRetry`).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from sqlalchemy.orm import Session

from emulator.db import Database, LeaveEventLoop, RecordThenRetry

T = TypeVar("T")


async def run(
    db: Database,
    work: Callable[[Session], T],
    *,
    write: bool,
    inline: bool = True,
    limiter: anyio.CapacityLimiter | None = None,
    shield: bool = False,
) -> T:
    """`work` in one transaction, committed on success. `inline`: try the lane first; `limiter`: the worker
    threads it may use (anyio's default pool); `shield`: the unit of work finishes even if the caller is
    cancelled (a client that goes away does not roll back what it asked for)."""
    if shield and inline and db.awaiting is not None:
        return await _finished_though_cancelled(_run(db, work, write=write, inline=inline, limiter=limiter))
    return await _run(db, work, write=write, inline=inline, limiter=limiter, shield=shield)


async def _run(
    db: Database,
    work: Callable[[Session], T],
    *,
    write: bool,
    inline: bool,
    limiter: anyio.CapacityLimiter | None,
    shield: bool = False,
) -> T:
    first: RecordThenRetry | None = None
    if inline and db.runs_inline:
        try:
            return db.run_inline(work, write=write)
        except LeaveEventLoop:
            pass
        except RecordThenRetry as failure:
            first = failure
    elif inline and db.awaiting is not None:
        try:
            return await db.awaiting.run(work)
        except LeaveEventLoop:
            pass
        except RecordThenRetry as failure:
            first = failure
    in_worker = functools.partial(db.run_in_worker, work, write=write, first=first)
    with anyio.CancelScope(shield=shield):
        result = await anyio.to_thread.run_sync(in_worker, limiter=limiter)
    return result


async def _finished_though_cancelled(unit: Coroutine[Any, Any, T]) -> T:
    """Await `unit` to its end, as a worker thread's unit of work runs to its end (on the loop's lane, then in
    a worker thread if it leaves the lane): if the caller is cancelled meanwhile, the cancellation is raised once
    the unit has committed or rolled back."""
    task = asyncio.ensure_future(unit)
    cancelled: BaseException | None = None
    with anyio.CancelScope(shield=True):  # anyio's cancellations; asyncio's own are caught below
        while not task.done():
            try:
                await asyncio.wait([task])
            except asyncio.CancelledError as error:
                cancelled = error
    if cancelled is not None:
        raise cancelled
    return task.result()
