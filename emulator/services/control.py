"""The control plane's domain: the clock, retention sweeps, and resetting a tenant."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from emulator import clock
from emulator.context import Ctx
from emulator.schemas.control import AddFaults, Latency, RateLimits
from emulator.store import control as control_store
from emulator.store import plain, retention
from emulator.store import vector_stores as vector_store_store
from emulator.tables import (
    AssistantRow,
    FaultRuleRow,
    FileRow,
    MessageRow,
    RunRow,
    RunStepRow,
    ScriptedTurnRow,
    ThreadRow,
)

_SECONDS_PER_DAY = 86_400


def sweep(session: Session, retention_days: int) -> int:
    return retention.sweep_threads(session, alive_since=clock.now(session) - retention_days * _SECONDS_PER_DAY)


def advance_clock(session: Session, seconds: int, retention_days: int) -> int:
    """Move time forward for everyone, then delete what the new time has made too old."""
    now = clock.advance(session, seconds)
    sweep(session, retention_days)
    return now


def reset_tenant(ctx: Ctx) -> list[Path]:
    """Delete every object of the calling tenant; returns the file paths to remove after commit."""
    session = ctx.session
    paths = [Path(p) for p in session.scalars(select(FileRow.storage_path).where(FileRow.tenant == ctx.tenant))]
    session.execute(delete(RunStepRow).where(RunStepRow.tenant == ctx.tenant))
    session.execute(delete(RunRow).where(RunRow.tenant == ctx.tenant))
    session.execute(delete(MessageRow).where(MessageRow.tenant == ctx.tenant))
    session.execute(delete(ThreadRow).where(ThreadRow.tenant == ctx.tenant))
    session.execute(delete(AssistantRow).where(AssistantRow.tenant == ctx.tenant))
    vector_store_store.remove_tenant(session, ctx.tenant)
    session.execute(delete(FileRow).where(FileRow.tenant == ctx.tenant))
    control_store.delete_tenant(session, ctx.tenant)
    return paths


def remove_paths(paths: list[Path]) -> None:
    for path in paths:
        if path.exists():
            os.unlink(path)


def pending_turns(ctx: Ctx) -> list[plain.Tracked]:
    return control_store.pending_turns(ctx.session, ctx.tenant)


def consumed_turns(ctx: Ctx) -> list[ScriptedTurnRow]:
    return control_store.consumed_turns(ctx.session, ctx.tenant)


def clear_turns(ctx: Ctx) -> int:
    return control_store.clear_pending_turns(ctx.session, ctx.tenant)


def add_faults(ctx: Ctx, body: AddFaults) -> list[FaultRuleRow]:
    return [
        control_store.add_fault(
            ctx.session, tenant=ctx.tenant, rule_id=ctx.ids.new("fault"), now=ctx.now, rule=rule.model_dump()
        )
        for rule in body.rules
    ]


def list_faults(ctx: Ctx) -> list[FaultRuleRow]:
    return control_store.faults(ctx.session, ctx.tenant)


def clear_faults(ctx: Ctx) -> int:
    return control_store.clear_faults(ctx.session, ctx.tenant)


def render_fault(row: FaultRuleRow) -> dict[str, object]:
    return {
        "id": row.id,
        "object": "emulator.fault_rule",
        "created_at": row.created_at,
        **row.rule,
        "hits": row.hits,
        "fired": row.fired,
    }


def set_rate_limits(ctx: Ctx, body: RateLimits | None) -> dict[str, object] | None:
    config = body.model_dump(exclude_none=True) if body is not None else None
    control_store.save_tenant_settings(ctx.session, ctx.tenant, rate_limits=config or None)
    return config


def set_latency(ctx: Ctx, body: Latency) -> dict[str, object]:
    config = body.model_dump(exclude_none=True)
    control_store.save_tenant_settings(ctx.session, ctx.tenant, latency=config)
    return config
