"""Control state of the tenants: scripted turns, fault rules, settings and rate counters."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from emulator.store import statements
from emulator.store.records import Table
from emulator.store.rows import ScriptedTurn
from emulator.tables import FaultRuleRow, RateCounterRow, ScriptedTurnRow, TenantSettingsRow


def add_turn(
    session: Session,
    *,
    tenant: str,
    turn_id: str,
    now: int,
    match: dict[str, Any],
    turn: dict[str, Any],
    consumed_at: int | None = None,
    consumed_by_run: str | None = None,
    request: dict[str, Any] | None = None,
) -> ScriptedTurnRow:
    row = ScriptedTurnRow(
        id=turn_id,
        tenant=tenant,
        created_at=now,
        match=match,
        turn=turn,
        consumed_at=consumed_at,
        consumed_by_run=consumed_by_run,
        request=request,
    )
    session.add(row)
    session.flush()
    return row


SCRIPTED_TURNS = Table(ScriptedTurn)
_PENDING = statements.prepared(
    statements.select_columns(
        ScriptedTurnRow, ScriptedTurnRow.tenant == bindparam("tenant"), ScriptedTurnRow.consumed_at.is_(None)
    ).order_by(ScriptedTurnRow.seq)
)
_PENDING_LOCKED = statements.prepared(_PENDING.with_for_update())


def pending_turns(session: Session, tenant: str, *, lock: bool = False) -> list[ScriptedTurn]:
    """The tenant's turns not played yet, in order, as records (playing one sets its `consumed_*`)."""
    return SCRIPTED_TURNS.load_all(session, _PENDING_LOCKED if lock else _PENDING, {"tenant": tenant})


def global_copy_id(turn_id: str, tenant: str) -> str:
    """The id of a tenant's consumed copy of a turn that belongs to every tenant."""
    return f"{turn_id}.{tenant}"


def pending_global_turns(session: Session, global_tenant: str, tenant: str) -> list[ScriptedTurn]:
    """The turns of every tenant (locked, in order) that `tenant` has not played yet."""
    rows = pending_turns(session, global_tenant, lock=True)
    if not rows:
        return []
    played = set(
        session.scalars(
            select(ScriptedTurnRow.id).where(ScriptedTurnRow.id.in_([global_copy_id(row.id, tenant) for row in rows]))
        )
    )
    return [row for row in rows if global_copy_id(row.id, tenant) not in played]


def consumed_turns(session: Session, tenant: str) -> list[ScriptedTurnRow]:
    return list(
        session.scalars(
            select(ScriptedTurnRow)
            .where(ScriptedTurnRow.tenant == tenant, ScriptedTurnRow.consumed_at.is_not(None))
            .order_by(ScriptedTurnRow.consumed_at, ScriptedTurnRow.seq)
        )
    )


def clear_pending_turns(session: Session, tenant: str) -> int:
    return session.execute(
        delete(ScriptedTurnRow).where(ScriptedTurnRow.tenant == tenant, ScriptedTurnRow.consumed_at.is_(None))
    ).rowcount


def add_fault(session: Session, *, tenant: str, rule_id: str, now: int, rule: dict[str, Any]) -> FaultRuleRow:
    row = FaultRuleRow(id=rule_id, tenant=tenant, created_at=now, rule=rule, hits=0, fired=0)
    session.add(row)
    session.flush()
    return row


def faults(session: Session, tenant: str) -> list[FaultRuleRow]:
    return list(session.scalars(select(FaultRuleRow).where(FaultRuleRow.tenant == tenant).order_by(FaultRuleRow.seq)))


def clear_faults(session: Session, tenant: str) -> int:
    return session.execute(delete(FaultRuleRow).where(FaultRuleRow.tenant == tenant)).rowcount


def spent(session: Session, rule_id: str, times: int | None) -> bool:
    """The rule has fired `times` times already (a rule without `times` is never spent)."""
    if times is None:
        return False
    fired = session.scalar(select(FaultRuleRow.fired).where(FaultRuleRow.id == rule_id))
    return fired is None or fired >= times


def count_hit(session: Session, rule_id: str) -> int:
    """Number this match of the rule (1, 2, …) atomically; its probability draw is keyed by the number."""
    session.execute(update(FaultRuleRow).where(FaultRuleRow.id == rule_id).values(hits=FaultRuleRow.hits + 1))
    return session.scalar(select(FaultRuleRow.hits).where(FaultRuleRow.id == rule_id)) or 0


def count_fired(session: Session, rule_id: str, times: int | None) -> bool:
    """Record a firing unless the rule has fired `times` already; True when it may fire."""
    condition = [FaultRuleRow.id == rule_id]
    if times is not None:
        condition.append(FaultRuleRow.fired < times)
    return session.execute(update(FaultRuleRow).where(*condition).values(fired=FaultRuleRow.fired + 1)).rowcount == 1


_SETTINGS = "emulator.tenant_settings"
"""`Session.info` key: the settings rows (or None) already read in this unit of work, by tenant (a model call
asks twice: its rate limits, its latency)."""
_SETTINGS_OF = statements.prepared(
    statements.select_columns(TenantSettingsRow, TenantSettingsRow.tenant == bindparam("tenant"))
)


def tenant_settings(session: Session, tenant: str) -> Row[Any] | None:
    known: dict[str, Row[Any] | None] = session.info.setdefault(_SETTINGS, {})
    if tenant not in known:
        known[tenant] = statements.first(session, _SETTINGS_OF, {"tenant": tenant})
    return known[tenant]


def save_tenant_settings(session: Session, tenant: str, **fields: Any) -> TenantSettingsRow:
    session.info.get(_SETTINGS, {}).pop(tenant, None)
    row = session.get(TenantSettingsRow, tenant, with_for_update=True)
    if row is None:
        row = TenantSettingsRow(tenant=tenant)
        session.add(row)
    for name, value in fields.items():
        setattr(row, name, value)
    session.flush()
    return row


def lock_window(session: Session, tenant: str, bucket: str, window_start: int) -> RateCounterRow:
    """The window's counters, created if absent and locked until the caller's transaction ends.

    Created with INSERT ... ON CONFLICT DO NOTHING, so concurrent first requests of a window (on PostgreSQL)
    neither collide on the key nor read stale counts: every check-and-add is serialized by the row lock.
    """
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    session.execute(
        insert(RateCounterRow)
        .values(tenant=tenant, bucket=bucket, window_start=window_start, requests=0, tokens=0)
        .on_conflict_do_nothing()
    )
    row = session.get(RateCounterRow, (tenant, bucket, window_start), with_for_update=True, populate_existing=True)
    assert row is not None
    return row


def model_tokens_in_window(session: Session, tenant: str, window_start: int) -> int:
    """Tokens of every model call of the tenant in the window."""
    total = session.scalar(
        select(func.coalesce(func.sum(RateCounterRow.tokens), 0)).where(
            RateCounterRow.tenant == tenant,
            RateCounterRow.window_start == window_start,
            RateCounterRow.bucket.like("model:%"),
        )
    )
    return int(total or 0)


def delete_tenant(session: Session, tenant: str) -> None:
    session.info.get(_SETTINGS, {}).pop(tenant, None)
    for table in (ScriptedTurnRow, FaultRuleRow):
        session.execute(delete(table).where(table.tenant == tenant))
    session.execute(delete(TenantSettingsRow).where(TenantSettingsRow.tenant == tenant))
    session.execute(delete(RateCounterRow).where(RateCounterRow.tenant == tenant))
