"""Threads, with the 60-day retention rule applied on every read.

A thread whose last activity is older than the retention period is gone: every path answers 404 as if it
never existed, and the sweeper (`store.retention`) deletes it and its messages from storage.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from emulator.errors import NotFound
from emulator.store import clocks, statements
from emulator.store.records import Table
from emulator.store.rows import Thread
from emulator.tables import MessageRow, RunRow, RunStepRow, ThreadRow

T = TypeVar("T")


THREADS = Table(Thread)


def create(
    session: Session,
    *,
    tenant: str,
    thread_id: str,
    now: int,
    tool_resources: dict[str, Any],
    metadata: dict[str, str],
) -> Thread:
    return THREADS.insert(
        session,
        {
            "id": thread_id,
            "tenant": tenant,
            "created_at": now,
            "last_active_at": now,
            "tool_resources": tool_resources,
            "metadata_": metadata,
            "active_run_id": None,
        },
    )


_BY_ID = statements.prepared(
    select(*statements.columns(ThreadRow), clocks.OFFSET_COLUMN).where(
        ThreadRow.tenant == bindparam("tenant"), ThreadRow.id == bindparam("thread_id")
    )
)
_BY_ID_LOCKED = statements.prepared(_BY_ID.with_for_update())


def get_with_clock(
    session: Session, tenant: str, thread_id: str, *, lock: bool = False
) -> tuple[Thread | None, int | None]:
    """The thread of this tenant (None if there is none, whatever its activity), and the tenant's clock offset
    read in the same statement: the retention check needs the time, and this is the first query of most requests.

    `lock` takes the row lock (PostgreSQL) that serializes everything that checks the thread's active run;
    SQLite needs none, its write transactions are already serialized by `BEGIN IMMEDIATE`.
    """
    row = statements.first(session, _BY_ID_LOCKED if lock else _BY_ID, {"tenant": tenant, "thread_id": thread_id})
    return (None, None) if row is None else (THREADS.track(session, row), row.clock_offset)


_REF_COLUMNS = (ThreadRow.__table__.c.id, ThreadRow.__table__.c.last_active_at, ThreadRow.__table__.c.active_run_id)
_REF_BY_ID = statements.prepared(
    select(*_REF_COLUMNS, clocks.OFFSET_COLUMN).where(
        ThreadRow.__table__.c.tenant == bindparam("tenant"), ThreadRow.__table__.c.id == bindparam("thread_id")
    )
)
_REF_BY_ID_LOCKED = statements.prepared(_REF_BY_ID.with_for_update())


def get_ref_with_clock(session: Session, tenant: str, thread_id: str, *, lock: bool = False) -> Row[Any] | None:
    """Like `get_with_clock`, as a plain row of what most requests need: `id`, `last_active_at`,
    `active_run_id` and `clock_offset`."""
    statement = _REF_BY_ID_LOCKED if lock else _REF_BY_ID
    return statements.first(session, statement, {"tenant": tenant, "thread_id": thread_id})


_TOOL_RESOURCES = statements.prepared(select(ThreadRow.tool_resources).where(ThreadRow.id == bindparam("thread_id")))


def tool_resources_of(session: Session, thread_id: str) -> dict[str, Any]:
    """The thread's `tool_resources` (empty if it is gone): what a run's built-in tools may use."""
    return statements.scalar(session, _TOOL_RESOURCES, {"thread_id": thread_id}) or {}


def require_alive(row: T | None, thread_id: str, *, alive_since: int) -> T:
    """The thread, if it exists and was active at or after `alive_since`."""
    if row is None or row.last_active_at < alive_since:
        raise NotFound.object("thread", thread_id)
    return row


def touch(thread: Thread, now: int) -> None:
    """Record activity (a message, a run, an update): it restarts the retention period.

    Set on the loaded record, so it is written with the unit of work's changes, and only when the second has
    changed.
    """
    if thread.last_active_at < now:
        thread.last_active_at = now


_TOUCH = statements.prepared(
    update(ThreadRow.__table__)
    .where(ThreadRow.__table__.c.id == bindparam("thread_id"), ThreadRow.__table__.c.last_active_at < bindparam("now"))
    .values(last_active_at=bindparam("now"))
)


def touch_by_id(session: Session, thread_id: str, last_active_at: int, now: int) -> None:
    """`touch` for a thread read as a plain row (`get_ref_with_clock`)."""
    if last_active_at < now and statements.execute(session, _TOUCH, {"thread_id": thread_id, "now": now}):
        THREADS.synchronize(session, thread_id, last_active_at=now)


def update_fields(row: Thread, now: int, **fields: Any) -> Thread:
    for name, value in fields.items():
        setattr(row, name, value)
    row.last_active_at = now
    return row


def remove(session: Session, row: Thread) -> None:
    delete_ids(session, [row.id])


def delete_ids(session: Session, thread_ids: list[str]) -> int:
    """Delete threads and everything under them (explicitly, so it holds without FK cascades too)."""
    if not thread_ids:
        return 0
    session.execute(delete(RunStepRow).where(RunStepRow.thread_id.in_(thread_ids)))
    session.execute(delete(RunRow).where(RunRow.thread_id.in_(thread_ids)))
    session.execute(delete(MessageRow).where(MessageRow.thread_id.in_(thread_ids)))
    return session.execute(delete(ThreadRow).where(ThreadRow.id.in_(thread_ids))).rowcount
