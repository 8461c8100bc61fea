"""Scripted turns: model turns a tenant queued (`POST /_emulator/script`), pending until a model call plays them.

The turns of the startup file (`--script`) belong to every tenant (`GLOBAL_TENANT`): each tenant plays each of
them once, recorded as a consumed copy in that tenant's own rows (`global_copy_id`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session

from emulator.store import statements
from emulator.store.records import Table
from emulator.store.rows import ScriptedTurn
from emulator.tables import ScriptedTurnRow

GLOBAL_TENANT = "*"
"""The tenant of the startup file's turns: they play for every tenant (each once), after its own turns."""

SCRIPTED_TURNS = Table(ScriptedTurn)


def add(
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
) -> ScriptedTurn:
    return SCRIPTED_TURNS.insert(
        session,
        {
            "id": turn_id,
            "tenant": tenant,
            "created_at": now,
            "match": match,
            "turn": turn,
            "consumed_at": consumed_at,
            "consumed_by_run": consumed_by_run,
            "request": request,
        },
    )


_turns = ScriptedTurnRow.__table__.c

_PENDING = statements.prepared(
    statements.select_columns(
        ScriptedTurnRow, ScriptedTurnRow.tenant == bindparam("tenant"), ScriptedTurnRow.consumed_at.is_(None)
    ).order_by(ScriptedTurnRow.seq)
)
_PENDING_LOCKED = statements.prepared(_PENDING.with_for_update())
_CONSUMED = statements.prepared(
    statements.select_columns(
        ScriptedTurnRow, ScriptedTurnRow.tenant == bindparam("tenant"), ScriptedTurnRow.consumed_at.is_not(None)
    ).order_by(ScriptedTurnRow.consumed_at, ScriptedTurnRow.seq)
)
_EXISTS = statements.prepared(select(_turns.id).where(_turns.id == bindparam("turn_id")))
_CLEAR_PENDING = statements.prepared(
    delete(ScriptedTurnRow).where(_turns.tenant == bindparam("tenant"), _turns.consumed_at.is_(None))
)
_DELETE_TENANT = statements.prepared(delete(ScriptedTurnRow).where(_turns.tenant == bindparam("tenant")))


def pending(session: Session, tenant: str, *, lock: bool = False) -> list[ScriptedTurn]:
    """The tenant's turns not played yet, in order, as records (playing one sets its `consumed_*`)."""
    return SCRIPTED_TURNS.load_all(session, _PENDING_LOCKED if lock else _PENDING, {"tenant": tenant})


def global_copy_id(turn_id: str, tenant: str) -> str:
    """The id of a tenant's consumed copy of a turn that belongs to every tenant."""
    return f"{turn_id}.{tenant}"


def pending_global(session: Session, tenant: str) -> list[ScriptedTurn]:
    """The turns of every tenant (locked, in order) that `tenant` has not played yet."""
    turns = pending(session, GLOBAL_TENANT, lock=True)
    if not turns:
        return []
    copies = [global_copy_id(turn.id, tenant) for turn in turns]
    played = {row.id for row in statements.all_rows(session, select(_turns.id).where(_turns.id.in_(copies)), {})}
    return [turn for turn in turns if global_copy_id(turn.id, tenant) not in played]


def consumed(session: Session, tenant: str) -> list[ScriptedTurn]:
    """The tenant's played turns, in the order they were played."""
    return SCRIPTED_TURNS.load_all(session, _CONSUMED, {"tenant": tenant})


def exists(session: Session, turn_id: str) -> bool:
    return statements.first(session, _EXISTS, {"turn_id": turn_id}) is not None


def clear_pending(session: Session, tenant: str) -> int:
    """Delete the tenant's turns not played yet; returns how many."""
    return statements.execute(session, _CLEAR_PENDING, {"tenant": tenant})


def delete_tenant(session: Session, tenant: str) -> None:
    statements.execute(session, _DELETE_TENANT, {"tenant": tenant})
