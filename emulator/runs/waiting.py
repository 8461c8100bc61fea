"""What the process does for all of its streams together, on one timer: nothing per stream.

A stream holds its run's lease for as long as it lives (`runs.streaming`): while it waits (for its model's first
token, on the hub, `runs.hub`) and while its writes wait for a client that reads slowly. This timer renews those
leases in one short transaction every `RENEW_LEASES_EVERY_SECONDS`, so that a stream may wait as long as its model
(or its client) takes without a transaction of its own. On SQLite, where no other process can tell
this one that a run changed, it also reads the waited runs' statuses in one read every `SQLITE_LOOK_EVERY_SECONDS`
(only when something committed since the last, `store.runs.SqliteCommits`) and notifies those another process
moved (a cancel sent to another process on the same file); on PostgreSQL the other processes' `pg_notify`
does that (`store.notifications`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Iterator

from fastapi.concurrency import run_in_threadpool

from emulator import limits
from emulator.db import Database, is_sqlite
from emulator.runs.hub import RunHub
from emulator.runs.state import RunStatus
from emulator.store import runs as store

log = logging.getLogger("emulator.runs")

RENEW_LEASES_EVERY_SECONDS = limits.RUN_STREAM_LEASE_SECONDS / 3
SQLITE_LOOK_EVERY_SECONDS = 0.5


class WaitingStreams:
    """The runs this process's streams hold, and the timer that works for all of them."""

    def __init__(self, db: Database, hub: RunHub) -> None:
        self._db = db
        self._hub = hub
        self._runs: Counter[str] = Counter()
        self._task: asyncio.Task[None] | None = None
        sqlite = is_sqlite(db.engine)
        self._every = SQLITE_LOOK_EVERY_SECONDS if sqlite else RENEW_LEASES_EVERY_SECONDS
        self._commits = store.SqliteCommits(db.engine) if sqlite else None

    @contextlib.contextmanager
    def holding(self, run_id: str) -> Iterator[None]:
        """A stream holds the run during the block (on the event loop): its lease is renewed."""
        self._runs[run_id] += 1
        if self._task is None:
            self._task = asyncio.create_task(self._work_while_waited(), name="waiting-streams")
        try:
            yield
        finally:
            self._runs[run_id] -= 1
            if not self._runs[run_id]:
                del self._runs[run_id]

    async def _work_while_waited(self) -> None:
        renewed = time.monotonic()
        try:
            while self._runs:
                await asyncio.sleep(self._every)
                if not self._runs:
                    break
                renew = time.monotonic() - renewed >= RENEW_LEASES_EVERY_SECONDS - self._every / 2
                if renew:
                    renewed = time.monotonic()
                moved = await run_in_threadpool(self._look, list(self._runs), renew)
                self._hub.notify_many(moved)
        finally:
            self._task = None
            if self._commits is not None:
                self._commits.close()

    def _look(self, run_ids: list[str], renew: bool) -> list[str]:
        """Renew the runs' leases (when `renew`); on SQLite, when anything committed since the last look, the runs
        no longer `in_progress` (a stream waits only for a run in progress)."""
        try:
            if renew:
                with self._db.transaction() as session:
                    store.renew_leases(session, run_ids, time.time() + limits.RUN_STREAM_LEASE_SECONDS)
            if self._commits is None or not (renew or self._commits.since_last_look()):
                return []
            with self._db.transaction(write=False) as session:
                now = store.statuses(session, run_ids)
        except Exception:  # the streams' next phases take their leases again, or see the run
            log.warning("the runs of %d waiting streams could not be looked after", len(run_ids), exc_info=True)
            return []
        return [run_id for run_id in run_ids if now.get(run_id) != RunStatus.IN_PROGRESS]
