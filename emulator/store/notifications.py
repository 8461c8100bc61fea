"""Runs changed, told to the other server processes over PostgreSQL: `pg_notify` in the transaction that
changed them (so the news leaves only if it commits), and one LISTEN connection per process that hears them.

SQLite serves one process: its units of work notify the process's hub directly (`commits.commit`) and send nothing.
A payload is `<origin> <run id>`; a process skips its own (it notified its hub when it committed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable

import psycopg
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from emulator.store import statements

log = logging.getLogger("emulator.notifications")

CHANNEL = "emulator_runs"
APPLICATION_NAME = "emulator-run-notifications"
"""The listening connection's name in `pg_stat_activity`."""
ORIGIN = secrets.token_hex(8)
"""This process, in the payloads it sends."""

_NOTIFY_ONE = f"SELECT pg_notify('{CHANNEL}', %s)"
_NOTIFY_MANY = f"SELECT pg_notify('{CHANNEL}', payload) FROM unnest(%s::text[]) AS payload"

RECONNECT_SECONDS = (0.1, 5.0)
"""The first and the longest pause before the listener connects again after losing its connection."""


def send(session: Session, run_ids: tuple[str, ...]) -> None:
    """Tell the other processes, when this transaction commits, that these runs changed (PostgreSQL only)."""
    if statements.on_sqlite(session):
        return
    payloads = [f"{ORIGIN} {run_id}" for run_id in run_ids]
    connection = session.connection()
    if len(payloads) == 1:
        connection.exec_driver_sql(_NOTIFY_ONE, (payloads[0],))
    else:
        connection.exec_driver_sql(_NOTIFY_MANY, (payloads,))


def _libpq_url(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


class Listener:
    """The process's LISTEN connection: each run another process changed is passed to `heard`; after a lost
    connection it connects again (pausing longer each time, up to `RECONNECT_SECONDS[1]`) and calls `resumed`,
    since what was sent meanwhile is lost."""

    def __init__(self, database_url: str, heard: Callable[[str], None], resumed: Callable[[], None]) -> None:
        self._url = _libpq_url(database_url)
        self._heard = heard
        self._resumed = resumed
        self._origin = ORIGIN
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

    def _hear(self, payload: str) -> None:
        origin, _, run_id = payload.partition(" ")
        if origin != self._origin and run_id:
            self._heard(run_id)
