"""Work that runs with no database transaction open: a code cell, an upstream model call.

The pattern, the same for every kind of work (`runs.safety` says why the mark):

    outside.claim(ctx, run, "model call", lease_seconds)   # lease + `unfinished_work`, committed
    result = ...                                           # the slow work, no transaction open
    outside.keep(run.id, key, result)                      # a rerun of the unit of work reuses it
    if not outside.reread(ctx, run): ...                   # the run again, locked; a cancel or expiry won?
    ...record the result...
    outside.commit(ctx, run, key)  (or ctx.after_commit(lambda: outside.drop(run.id, key)))

Results are kept in this process, by (run id, key), until what records them commits: a unit of work that rolls
back after the work (a deadlock retry) records the kept result when it runs again, never does the work twice.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from emulator.context import Ctx
from emulator.db import Database
from emulator.runs.state import RunStatus
from emulator.store import records
from emulator.store import runs as store
from emulator.store.rows import Run

log = logging.getLogger("emulator.runs")

_kept: dict[tuple[str, str], Any] = {}
_lock = threading.Lock()


def claim(ctx: Ctx, run: Run, work: str, lease_seconds: float) -> None:
    """Put the work on record (`unfinished_work`, a lease covering it) and commit: the run's locks go, and a
    reader meanwhile leaves the run to this process."""
    run.lease_until = time.time() + lease_seconds
    run.unfinished_work = work
    ctx.commit_and_continue()
    records.forget_loaded(ctx.session, keep=run)  # what the result's transaction needs it reads again


HELD_SECONDS = 5.0
"""The lease of work that renews its claim while it runs (`renewer`): a process that dies mid-work leaves the
run to a runner (or the next reader) within this time, however long the work may take."""
RENEW_EVERY_SECONDS = 1.5


def renewer(ctx: Ctx, run_id: str) -> Callable[[], None]:
    """What extends the run's claim by `HELD_SECONDS`, each call in a short transaction of its own (every
    `RENEW_EVERY_SECONDS` while the work runs)."""
    db = ctx.db

    def renew() -> None:
        if db is not None:
            _renew(db, run_id, look=False)

    return renew


def _renew(db: Database, run_id: str, *, look: bool) -> bool:
    """Extend the run's claim; when `look`, False once the run is no longer `in_progress`."""
    try:
        with db.transaction() as session:
            store.renew_claim(session, run_id, time.time() + HELD_SECONDS)
            return not look or store.statuses(session, [run_id]).get(run_id) == RunStatus.IN_PROGRESS
    except Exception:  # the claim lapses sooner; the work goes on
        log.warning("run %s: its claim could not be renewed", run_id, exc_info=True)
        return True


@contextlib.contextmanager
def renewing(ctx: Ctx, run_id: str, moved: Callable[[], None]) -> Iterator[None]:
    """The run's claim is renewed from a thread of its own while the block runs (work that blocks its thread
    and cannot call back: a code cell); `moved` is called once the run is no longer `in_progress` (a cancel or
    an expiry, here or on another replica), so that the work may end early."""
    db = ctx.db
    ended = threading.Event()

    def keep_renewing() -> None:
        while db is not None and not ended.wait(RENEW_EVERY_SECONDS):
            if not _renew(db, run_id, look=True):
                moved()

    renewing_thread = threading.Thread(target=keep_renewing, name=f"renew-{run_id}", daemon=True)
    renewing_thread.start()
    try:
        yield
    finally:
        ended.set()
        renewing_thread.join()


def lapse(db: Database, run_id: str) -> None:
    """The work has ended with its result kept in this process and nobody here to record it (the stream that
    waited for it has gone): its claim lapses now, so that the next reader records the result
    (`waiting`) instead of waiting out the lease."""
    try:
        with db.transaction() as session:
            store.renew_claim(session, run_id, time.time())
    except Exception:  # the lease lapses by itself
        log.warning("run %s: its claim could not be let go", run_id, exc_info=True)


def keep(run_id: str, key: str, result: Any) -> None:
    with _lock:
        _kept[(run_id, key)] = result


def kept(run_id: str, key: str) -> tuple[bool, Any]:
    """(True, the result) when this process keeps a result of `key` for the run."""
    with _lock:
        found = (run_id, key) in _kept
        return found, _kept.get((run_id, key))


def waiting(run: Run) -> bool:
    """This process keeps a result of work for the run: the next unit of work records it (no claim to wait
    out, no interruption to count)."""
    if not _kept:
        return False
    with _lock:
        return any(run_id == run.id for run_id, _key in _kept)


def drop(run_id: str, key: str) -> Any:
    """The kept result, no longer kept (None if there was none)."""
    with _lock:
        return _kept.pop((run_id, key), None)


def drop_all(run_id: str) -> list[Any]:
    """Every result kept for the run (it failed while recording one), no longer kept."""
    with _lock:
        keys = [key for key in _kept if key[0] == run_id]
        return [_kept.pop(key) for key in keys]


def reread(ctx: Ctx, run: Run) -> bool:
    """After the work: the run as it is now (locked); False when it is gone. Its mark is cleared: this
    transaction records the work's result, or the run moved on."""
    if not store.reread(ctx.session, run):
        return False
    run.unfinished_work = None
    return True


def commit(ctx: Ctx, run: Run, key: str) -> Any:
    """The result (or the run's move) commits at once; the unit of work goes on in a new transaction, the run
    locked again. Returns the result no longer kept."""
    ctx.commit_and_continue()
    result = drop(run.id, key)
    records.forget_loaded(ctx.session, keep=run)
    store.reread(ctx.session, run)
    return result
