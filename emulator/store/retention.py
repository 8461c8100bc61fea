"""Deletes what has outlived its retention period: threads idle for longer than `thread_retention_days`, each
by its tenant's clock."""

from __future__ import annotations

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from emulator.store import clocks, threads
from emulator.tables import TenantClockRow, ThreadRow

_SWEEP_BATCH = 500


def sweep_tenant(session: Session, tenant: str, *, alive_since: int) -> int:
    """Delete the tenant's threads whose last activity is older than `alive_since`; returns how many went."""
    return _sweep(session, ThreadRow.tenant == tenant, ThreadRow.last_active_at < alive_since)


def sweep_every_tenant(session: Session, *, idle_seconds: int, server_now: int) -> int:
    """Delete every thread idle for longer than `idle_seconds` by its own tenant's clock, given the time of a
    tenant that never advanced (`server_now`): a tenant's own offset moves its threads' deadline."""
    own_offset = func.coalesce(
        select(TenantClockRow.offset_seconds).where(TenantClockRow.tenant == ThreadRow.tenant).scalar_subquery(), 0
    )
    alive_since = server_now - idle_seconds
    return _sweep(
        session,
        ThreadRow.last_active_at < alive_since + clocks.largest_own_offset(session),  # a range on the index
        ThreadRow.last_active_at < alive_since + own_offset,
    )


def _sweep(session: Session, *conditions: ColumnElement[bool]) -> int:
    """Find the threads in one scan (threads that are still alive may come first in the index, by their tenant's
    clock), then delete them in batches."""
    ids = list(session.scalars(select(ThreadRow.id).where(*conditions)))
    return sum(threads.delete_ids(session, ids[at : at + _SWEEP_BATCH]) for at in range(0, len(ids), _SWEEP_BATCH))
