"""Runs changed, told to the other server processes over PostgreSQL: each process sends, from a connection of its
own, the runs its units of work changed once they have committed (`Sender`), and hears the others' on one LISTEN
connection (`Listener`).

Why after the commit and not in the transaction (where the news would leave exactly when it commits): a
transaction that has sent a NOTIFY takes PostgreSQL's database-wide notification lock at commit and holds it until
its commit is flushed to disk, so the writing transactions that notify commit one at a time. With pgbench (16
clients, one-row UPDATEs, this 2-core machine): 5,200 transactions/s, 790 with a `pg_notify` in each, 5,400 with the
`pg_notify` sent after each commit. The price: news of a commit is lost if its process dies before sending it (or
while PostgreSQL is away); a waiter then learns of the change at its wait's timeout, as after a lost LISTEN
connection.

News nobody else would hear is not sent (`Peers`): a process alone on its database (one server, the common case)
would otherwise pay a round trip per commit for nothing. A listener that connects says so on the channel and looks
for the other processes' listening connections, so each process learns of the others, whichever started first.

SQLite serves one process: its units of work notify the process's hub (`commits.commit`) and send nothing.
A payload is `<origin> <run id>`, or `<origin>` alone for a listener saying it is there; a process skips its own
news (it notified its hub when it committed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from emulator.db import on_event_loop
from emulator.store.records import EVERY_RUN

log = logging.getLogger("emulator.notifications")

CHANNEL = "emulator_runs"
APPLICATION_NAME = "emulator-run-notifications"
"""The listening connection's name in `pg_stat_activity`."""
SENDER_NAME = "emulator-run-notifier"
"""The sending connection's name in `pg_stat_activity`."""
ORIGIN = secrets.token_hex(8)
"""This process, in the payloads it sends."""

_NOTIFY_MANY = f"SELECT pg_notify('{CHANNEL}', payload) FROM unnest(%s::text[]) AS payload"
_OTHERS_LISTEN = (
    "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database()"
    " AND application_name = %s AND pid <> pg_backend_pid())"
)

RECONNECT_SECONDS = (0.1, 5.0)
"""The first and the longest pause before the listener or the sender connects again after losing its connection."""
MOST_PENDING = 10_000
"""Runs waiting to be sent past which the sender sends `EVERY_RUN` instead (PostgreSQL has been away long)."""


def _libpq_url(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


class Peers:
    """Whether another process listens on this database: until one does, the sender sends nothing. Learned by
    the listener, when it connects (the others' listening connections) and whenever it hears another process
    (one that starts listening says so at once). Once known it stays known: a process that has left costs the
    others their sends, not their news."""

    def __init__(self) -> None:
        self._present = threading.Event()

    @property
    def present(self) -> bool:
        return self._present.is_set()

    def seen(self) -> None:
        self._present.set()


class Listener:
    """The process's LISTEN connection: each run another process changed is passed to `heard`; after a lost
    connection it connects again (pausing longer each time, up to `RECONNECT_SECONDS[1]`) and calls `resumed`,
    since what was sent meanwhile is lost. Each time it connects it tells `peers` whether another process listens,
    and tells the other processes that this one does."""

    def __init__(
        self,
        database_url: str,
        heard: Callable[[str], None],
        resumed: Callable[[], None],
        peers: Peers | None = None,
        origin: str = ORIGIN,
    ) -> None:
        self._url = _libpq_url(database_url)
        self._heard = heard
        self._resumed = resumed
        self._peers = peers or Peers()
        self._origin = origin
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()
        """Set while the connection listens (tests and start-up wait for it)."""

    async def start(self, timeout: float = 10.0) -> None:
        """Start listening; returns once the first connection listens (or after `timeout`: it keeps trying)."""
        self._task = asyncio.create_task(self._listen_forever(), name="run-notifications")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.listening.wait(), timeout)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _listen_forever(self) -> None:
        pause = RECONNECT_SECONDS[0]
        first = True
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._url, autocommit=True, application_name=APPLICATION_NAME
                ) as connection:
                    await connection.execute(f"LISTEN {CHANNEL}")
                    await self._meet_the_others(connection)
                    self.listening.set()
                    pause = RECONNECT_SECONDS[0]
                    if not first:
                        log.info("listening for run notifications again")
                        self._resumed()
                    first = False
                    async for notification in connection.notifies():
                        self._hear(notification.payload)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("run notifications: connection lost (%s); connecting again in %.1f s", error, pause)
            self.listening.clear()
            first = False
            await asyncio.sleep(pause)
            pause = min(pause * 2, RECONNECT_SECONDS[1])

    async def _meet_the_others(self, connection: psycopg.AsyncConnection[Any]) -> None:
        """Say that this process listens (after LISTEN, so that of two processes connecting at once, each hears the
        other or finds its connection), then look for the others' listening connections."""
        await connection.execute("SELECT pg_notify(%s, %s)", (CHANNEL, self._origin))
        cursor = await connection.execute(_OTHERS_LISTEN, (APPLICATION_NAME,))
        found = await cursor.fetchone()
        if found is not None and found[0]:
            self._peers.seen()

    def _hear(self, payload: str) -> None:
        origin, _, run_id = payload.partition(" ")
        if origin == self._origin:
            return
        self._peers.seen()
        if run_id:
            self._heard(run_id)


class Sender:
    """The process's sending connection (autocommit). `send` is called in the thread that committed (a worker
    thread for a unit of work on the event loop's lane), with the runs its unit of work changed: it sends them at
    once, unless another thread is sending, which then sends them with its next batch (so that under load the
    news of many commits leaves in one statement, and no thread waits for another's round trip). The connection
    is made at the first send; after an error the news waits for a later send (`RECONNECT_SECONDS`), and past
    `MOST_PENDING` runs becomes `EVERY_RUN`. With `peers`, news is sent only once another process listens
    (before, it is dropped: nobody would hear it)."""

    def __init__(self, database_url: str, peers: Peers | None = None) -> None:
        self._url = _libpq_url(database_url)
        self._peers = peers
        self._pending: list[str] = []
        self._pending_lock = threading.Lock()
        self._sending = threading.Lock()
        self._connection: psycopg.Connection[object] | None = None
        self._pause = RECONNECT_SECONDS[0]
        self._next_try = 0.0
        self._closed = False

    def send(self, run_ids: Iterable[str]) -> None:
        """Tell the other processes that these runs changed (their change has committed). From a unit of work on
        the event loop's lane, a worker thread sends (the loop must not wait for the round trip)."""
        if self._peers is not None and not self._peers.present:
            return
        if on_event_loop():
            asyncio.get_running_loop().run_in_executor(None, self._send_pending, tuple(run_ids))
            return
        self._send_pending(run_ids)

    def _send_pending(self, run_ids: Iterable[str]) -> None:
        with self._pending_lock:
            self._pending.extend(run_ids)
        while self._sending.acquire(blocking=False):
            try:
                self._send(self._take())
            finally:
                self._sending.release()
            with self._pending_lock:  # what came while this thread was sending, if its own sender has gone
                if not self._pending:
                    return

    def close(self) -> None:
        """No more sends (a unit of work that commits while the server stops sends nothing)."""
        with self._sending:
            self._closed = True
            self._disconnect()

    def _take(self) -> list[str]:
        with self._pending_lock:
            taken, self._pending = self._pending, []
        return list(dict.fromkeys(taken))

    def _send(self, run_ids: list[str]) -> None:
        if not run_ids or self._closed:
            return
        if time.monotonic() < self._next_try:
            self._put_back(run_ids)
            return
        payloads = [f"{ORIGIN} {run_id}" for run_id in run_ids]
        for attempt in range(2):  # a connection PostgreSQL dropped while idle is made again at once
            try:
                self._connected().execute(_NOTIFY_MANY, (payloads,))
                self._pause = RECONNECT_SECONDS[0]
                return
            except psycopg.Error as error:
                self._disconnect()
                if attempt:
                    log.warning("run notifications: sending failed (%s); trying again in %.1f s", error, self._pause)
        self._next_try = time.monotonic() + self._pause
        self._pause = min(self._pause * 2, RECONNECT_SECONDS[1])
        self._put_back(run_ids)

    def _connected(self) -> psycopg.Connection[object]:
        if self._connection is None or self._connection.closed:
            self._connection = psycopg.connect(self._url, autocommit=True, application_name=SENDER_NAME,
                                               connect_timeout=5)
        return self._connection

    def _disconnect(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _put_back(self, run_ids: list[str]) -> None:
        with self._pending_lock:
            pending = run_ids + self._pending
            self._pending = [EVERY_RUN] if len(pending) > MOST_PENDING else pending
