"""Threads, with the 60-day retention rule applied on every read.

A thread whose last activity is older than the retention period is gone: every path answers 404 as if it
never existed, and the sweeper (`store.retention`) deletes it and its messages from storage.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session

from emulator.errors import NotFound
from emulator.store import clocks, records, statements
from emulator.store.records import Table
from emulator.store.rows import Thread
from emulator.tables import MessageRow, RunRow, RunStepRow, ThreadRow

THREADS = Table(Thread)

_THREADS = ThreadRow.__table__.c


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
        _THREADS.tenant == bindparam("tenant"), _THREADS.id == bindparam("thread_id")
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
    found = THREADS.load_with_extras(
        session, _BY_ID_LOCKED if lock else _BY_ID, {"tenant": tenant, "thread_id": thread_id}
    )
    if found is None:
        return None, None
    thread, (offset,) = found
    return thread, offset


_TOOL_RESOURCES = statements.prepared(select(_THREADS.tool_resources).where(_THREADS.id == bindparam("thread_id")))


def tool_resources_of(session: Session, thread_id: str) -> dict[str, Any]:
    """The thread's `tool_resources` (empty if it is gone): what a run's built-in tools may use."""
    resources: dict[str, Any] | None = statements.scalar(session, _TOOL_RESOURCES, {"thread_id": thread_id})
    return resources or {}


def require_alive(thread: Thread | None, thread_id: str, *, alive_since: int) -> Thread:
    """The thread, if it exists and was active at or after `alive_since`."""
    if thread is None or thread.last_active_at < alive_since:
        raise NotFound.object("thread", thread_id)
    return thread


def touch(thread: Thread, now: int) -> None:
    """Record activity (a message, a run, an update): it restarts the retention period.

    Set on the loaded record, so it is written with the unit of work's changes, and only when the second has
    changed.
    """
    if thread.last_active_at < now:
        thread.last_active_at = now


def update_fields(thread: Thread, now: int, **fields: Any) -> Thread:
    for name, value in fields.items():
        setattr(thread, name, value)
    thread.last_active_at = now
    return thread


def remove(session: Session, thread: Thread) -> None:
    delete_ids(session, [thread.id])


_ACTIVE_RUNS = select(_THREADS.active_run_id).where(
    _THREADS.id.in_(bindparam("thread_ids", expanding=True)), _THREADS.active_run_id.is_not(None)
)


def delete_ids(session: Session, thread_ids: list[str]) -> int:
    """Delete threads and everything under them (explicitly, so it holds without FK cascades too). Their active
    runs are announced: a stream waiting for one ends at once (in any process), its run gone."""
    if not thread_ids:
        return 0
    active = statements.all_rows(session, _ACTIVE_RUNS, {"thread_ids": thread_ids})
    records.announce_runs(session, [row.active_run_id for row in active])
    for table in (RunStepRow, RunRow, MessageRow):
        statements.execute(session, delete(table).where(table.thread_id.in_(thread_ids)), {})
    return statements.execute(session, delete(ThreadRow).where(ThreadRow.id.in_(thread_ids)), {})
