"""How a unit of work commits: its changed records written and, once it has committed, the runs it changed told to
whoever waits for them (`runs.hub` in this process; on PostgreSQL the other processes too, through
`store.notifications.Sender`). And, at debug level, each transaction's beginning logged (how a test sees that
waiting streams cost no transaction)."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable

from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

log = logging.getLogger("emulator.db")

RunsChanged = Callable[[tuple[str, ...]], None]

CHANGES = "emulator.changes"
"""`Session.info` key: the unit of work's tracked records (`store.records.Changes`), whose changes are written
before commit."""


RUNS_CHANGED = "emulator.runs_changed"
"""`Session.info` key: what to call with the ids of the runs a unit of work changed once it has committed (the
process's `runs.hub.RunHub.notify_many`; see `Database.connect`)."""


def write_changes(session: Session) -> None:
    """Write the records changed in this unit of work: before every statement of `store.statements` and of the
    session, and before commit."""
    changes = session.info.get(CHANGES)
    if changes is not None and changes.dirty:
        changes.write(session)


def commit(session: Session, commit: Callable[[], None]) -> None:
    """Commit the unit of work (`commit` does): its changes written first and, once committed, the runs it
    changed told (`RUNS_CHANGED`)."""
    runs = finish(session)
    commit()
    notify_committed(session, runs)


def finish(session: Session) -> tuple[str, ...]:
    """Just before commit: write the changed records; returns the ids of the runs they changed."""
    changes = session.info.get(CHANGES)
    if changes is None:
        return ()
    if changes.dirty:
        changes.write(session)
    runs: tuple[str, ...] = changes.take_runs()
    return runs


def notify_committed(session: Session, runs: tuple[str, ...]) -> None:
    if runs:
        runs_changed = session.info.get(RUNS_CHANGED)
        if runs_changed is not None:
            runs_changed(runs)


TRANSACTION_BEGINS = "transaction %d begins"
"""Logged (at debug level only) as each transaction begins: how a test sees that waiting costs none."""
_transactions = itertools.count(1)


def log_transactions(engine: Engine) -> None:
    """At debug level (set before the database is connected), log every transaction's beginning."""
    if log.isEnabledFor(logging.DEBUG):
        event.listen(engine, "begin", lambda _connection: log.debug(TRANSACTION_BEGINS, next(_transactions)))
