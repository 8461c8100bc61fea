"""Rate counters: a tenant's requests and tokens in one fixed window, per bucket (`management:<limit>`,
`model:<model>`)."""

from __future__ import annotations

from sqlalchemy import Insert, bindparam, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from emulator.store import statements
from emulator.store.records import Table
from emulator.store.rows import RateCounter
from emulator.tables import RateCounterRow

RATE_COUNTERS = Table(RateCounter)

_counters = RateCounterRow.__table__.c


def _create_window(on_sqlite: bool) -> Insert:
    insert = sqlite.insert if on_sqlite else postgresql.insert
    return statements.prepared(
        insert(RateCounterRow)
        .values(
            tenant=bindparam("tenant"), bucket=bindparam("bucket"), window_start=bindparam("window_start"),
            requests=0, tokens=0,
        )
        .on_conflict_do_nothing()
    )


_CREATE_WINDOW = {on_sqlite: _create_window(on_sqlite) for on_sqlite in (True, False)}
"""By whether the database is SQLite: INSERT ... ON CONFLICT DO NOTHING is each dialect's own statement."""
_WINDOW_LOCKED = statements.prepared(
    statements.select_columns(
        RateCounterRow,
        RateCounterRow.tenant == bindparam("tenant"),
        RateCounterRow.bucket == bindparam("bucket"),
        RateCounterRow.window_start == bindparam("window_start"),
    ).with_for_update()
)
_MODEL_TOKENS = statements.prepared(
    select(func.coalesce(func.sum(_counters.tokens), 0).label("tokens")).where(
        _counters.tenant == bindparam("tenant"),
        _counters.window_start == bindparam("window_start"),
        _counters.bucket.like("model:%"),
    )
)
_DELETE_TENANT = statements.prepared(delete(RateCounterRow).where(_counters.tenant == bindparam("tenant")))


def lock_window(session: Session, tenant: str, bucket: str, window_start: int) -> RateCounter:
    """The window's counters, created if absent and locked until the caller's transaction ends; the caller
    adds to its `requests` and `tokens` (written by key with the unit of work's changes).

    Created with INSERT ... ON CONFLICT DO NOTHING, so concurrent first requests of a window (on PostgreSQL)
    neither collide on the key nor read stale counts: every check-and-add is serialized by the row lock, and
    the row is read afresh under it.
    """
    params = {"tenant": tenant, "bucket": bucket, "window_start": window_start}
    statements.execute(session, _CREATE_WINDOW[statements.on_sqlite(session)], params)
    row = statements.first(session, _WINDOW_LOCKED, params)
    assert row is not None
    counter = RATE_COUNTERS.track(session, row)
    RATE_COUNTERS.synchronize(session, (tenant, bucket, window_start), requests=row.requests, tokens=row.tokens)
    return counter


def model_tokens_in_window(session: Session, tenant: str, window_start: int) -> int:
    """Tokens of every model call of the tenant in the window."""
    return int(statements.scalar(session, _MODEL_TOKENS, {"tenant": tenant, "window_start": window_start}) or 0)


def delete_tenant(session: Session, tenant: str) -> None:
    statements.execute(session, _DELETE_TENANT, {"tenant": tenant})
