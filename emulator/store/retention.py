"""Deletes what has outlived its retention period: threads idle for longer than `thread_retention_days`, each
by its tenant's clock."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, bindparam, func, select
from sqlalchemy.orm import Session

from emulator.store import clocks, statements, threads
from emulator.store.rows import TenantClock, Thread

_SWEEP_BATCH = 500

_threads = Thread.mapped.__table__.c
_own = TenantClock.mapped.__table__.c

_IDLE_OF_TENANT = statements.prepared(
    select(_threads.id).where(
        _threads.tenant == bindparam("tenant"),
        _threads.last_active_at < bindparam("alive_since", type_=_threads.last_active_at.type),
    )
)
_IDLE_BY_OWN_CLOCK = statements.prepared(
    select(_threads.id).where(
        _threads.last_active_at < bindparam("alive_since_latest", type_=_threads.last_active_at.type),  # an index range
        _threads.last_active_at
        < bindparam("alive_since", type_=_threads.last_active_at.type)
        + func.coalesce(select(_own.offset_seconds).where(_own.tenant == _threads.tenant).scalar_subquery(), 0),
    )
)


def sweep_tenant(session: Session, tenant: str, *, alive_since: int) -> int:
    """Delete the tenant's threads whose last activity is older than `alive_since`; returns how many went."""
    return delete_found(session, _IDLE_OF_TENANT, {"tenant": tenant, "alive_since": alive_since})


def sweep_every_tenant(session: Session, *, idle_seconds: int, server_now: int) -> int:
    """Delete every thread idle for longer than `idle_seconds` by its own tenant's clock, given the time of a
    tenant that never advanced (`server_now`): a tenant's own offset moves its threads' deadline."""
    alive_since = server_now - idle_seconds
    params = {"alive_since": alive_since, "alive_since_latest": alive_since + clocks.largest_own_offset(session)}
    return delete_found(session, _IDLE_BY_OWN_CLOCK, params)


def delete_found(session: Session, found: Select[Any], params: dict[str, Any]) -> int:
    """Delete the threads whose ids `found` selects, and everything under them: found in one scan (threads that
    are still alive may come first in the index, by their tenant's clock), then deleted in batches."""
    ids = [row.id for row in statements.all_rows(session, found, params)]
    return sum(threads.delete_ids(session, ids[at : at + _SWEEP_BATCH]) for at in range(0, len(ids), _SWEEP_BATCH))
