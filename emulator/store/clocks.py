"""The clocks' offsets: every tenant's (one row, moved by the operator key) and each tenant's own.

A tenant's offset is the sum of the two (`emulator.clock`). Absent rows count as 0, so a tenant that never
advanced has no row. Advances are atomic statements (an UPDATE, an upsert), never a record read and written
back: concurrent advances on replicas add up.
"""

from __future__ import annotations

from sqlalchemy import Connection, Insert, bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from emulator.store import records, statements
from emulator.store.rows import Clock, TenantClock

CLOCK_ROW_ID = 1

_EVERY = Clock.mapped.__table__.c
_OWN = TenantClock.mapped.__table__.c

_EVERY_TENANT = func.coalesce(select(_EVERY.offset_seconds).where(_EVERY.id == CLOCK_ROW_ID).scalar_subquery(), 0)
_TENANT_OWN = func.coalesce(select(_OWN.offset_seconds).where(_OWN.tenant == bindparam("tenant")).scalar_subquery(), 0)

OFFSET_COLUMN = (_EVERY_TENANT + _TENANT_OWN).label("clock_offset")
"""The offset of the tenant bound as `tenant`, as a column: a request's first query reads its clock along with
its own rows (two primary-key lookups in the same statement)."""

_OFFSET = statements.prepared(select(OFFSET_COLUMN))
_EVERY_TENANT_OFFSET = statements.prepared(select(_EVERY_TENANT.label("clock_offset")))
_LARGEST_OWN = statements.prepared(select(func.coalesce(func.max(_OWN.offset_seconds), 0).label("largest")))
_ADVANCE_EVERY_TENANT = statements.prepared(
    update(Clock.mapped.__table__)
    .where(_EVERY.id == CLOCK_ROW_ID)
    .values(offset_seconds=_EVERY.offset_seconds + bindparam("seconds"))
)


def _advance_tenant(on_sqlite: bool) -> Insert:
    insert = (sqlite.insert if on_sqlite else postgresql.insert)(TenantClock.mapped.__table__)
    statement = insert.values(tenant=bindparam("tenant"), offset_seconds=bindparam("seconds"))
    return statements.prepared(
        statement.on_conflict_do_update(
            index_elements=[_OWN.tenant],
            set_={"offset_seconds": _OWN.offset_seconds + statement.excluded.offset_seconds},
        )
    )


_ADVANCE_TENANT = {on_sqlite: _advance_tenant(on_sqlite) for on_sqlite in (True, False)}
"""By whether the database is SQLite: an upsert is each dialect's own statement."""


def offset_seconds(session: Session, tenant: str) -> int:
    """The tenant's whole offset: every tenant's plus its own."""
    return int(statements.scalar(session, _OFFSET, {"tenant": tenant}) or 0)


def every_tenant_offset(session: Session) -> int:
    """The part of every tenant's offset that the operator moved (the server's time before any tenant's own)."""
    return int(statements.scalar(session, _EVERY_TENANT_OFFSET, {}) or 0)


def largest_own_offset(session: Session) -> int:
    return int(statements.scalar(session, _LARGEST_OWN, {}) or 0)


def advance_tenant(session: Session, tenant: str, seconds: int) -> None:
    """Add to the tenant's own offset atomically (safe against concurrent advances on replicas)."""
    statements.execute(session, _ADVANCE_TENANT[statements.on_sqlite(session)], {"tenant": tenant, "seconds": seconds})
    records.announce_every_run(session)


def advance_every_tenant(session: Session, seconds: int) -> None:
    statements.execute(session, _ADVANCE_EVERY_TENANT, {"seconds": seconds})
    records.announce_every_run(session)


def ensure_clock_row(connection: Connection) -> None:
    """Every tenant's clock row exists from the first migration on (at offset 0): advances only update it."""
    table = Clock.mapped.__table__
    if connection.scalar(select(table.c.id).where(table.c.id == CLOCK_ROW_ID)) is None:
        connection.execute(insert(table).values(id=CLOCK_ROW_ID, offset_seconds=0))
