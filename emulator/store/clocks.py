"""The clocks' offsets: every tenant's (one row, moved by the operator key) and each tenant's own.

A tenant's offset is the sum of the two (`emulator.clock`). Absent rows count as 0, so a tenant that never
advanced has no row.
"""

from __future__ import annotations

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from emulator.store import statements
from emulator.tables import ClockRow, TenantClockRow

CLOCK_ROW_ID = 1

_EVERY = ClockRow.__table__.c
_OWN = TenantClockRow.__table__.c

_EVERY_TENANT = func.coalesce(select(_EVERY.offset_seconds).where(_EVERY.id == CLOCK_ROW_ID).scalar_subquery(), 0)
_TENANT_OWN = func.coalesce(select(_OWN.offset_seconds).where(_OWN.tenant == bindparam("tenant")).scalar_subquery(), 0)

OFFSET_COLUMN = (_EVERY_TENANT + _TENANT_OWN).label("clock_offset")
"""The offset of the tenant bound as `tenant`, as a column: a request's first query reads its clock along with
its own rows (two primary-key lookups in the same statement)."""

_OFFSET = statements.prepared(select(OFFSET_COLUMN))
_EVERY_TENANT_OFFSET = statements.prepared(select(_EVERY_TENANT.label("clock_offset")))
_LARGEST_OWN = select(func.coalesce(func.max(_OWN.offset_seconds), 0))


def offset_seconds(session: Session, tenant: str) -> int:
    return statements.scalar(session, _OFFSET, {"tenant": tenant}) or 0


def every_tenant_offset(session: Session) -> int:
    """The part of every tenant's offset that the operator moved (the server's time before any tenant's own)."""
    return statements.scalar(session, _EVERY_TENANT_OFFSET, {}) or 0


def largest_own_offset(session: Session) -> int:
    return session.execute(_LARGEST_OWN).scalar_one()


def advance_tenant(session: Session, tenant: str, seconds: int) -> None:
    """Add to the tenant's own offset atomically (an upsert: safe against concurrent advances on replicas)."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = insert(TenantClockRow).values(tenant=tenant, offset_seconds=seconds)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[_OWN.tenant],
            set_={"offset_seconds": _OWN.offset_seconds + statement.excluded.offset_seconds},
        )
    )


def advance_every_tenant(session: Session, seconds: int) -> None:
    session.execute(
        update(ClockRow).where(ClockRow.id == CLOCK_ROW_ID).values(offset_seconds=ClockRow.offset_seconds + seconds)
    )
