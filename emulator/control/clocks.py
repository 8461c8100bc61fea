"""The control plane's domain: the tenants' clocks, retention sweeps, and resetting a tenant."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from emulator import clock
from emulator.context import Ctx
from emulator.errors import PermissionDenied
from emulator.schemas.control import AddFaults, Latency, RateLimits
from emulator.store import clocks, retention
from emulator.store import control as control_store
from emulator.store import vector_stores as vector_store_store
from emulator.store.rows import ScriptedTurn
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


_EVERY_TENANT_NEEDS_OPERATOR = (
    "Moving every tenant's clock needs the operator key (EMULATOR_ADMIN_KEY); without 'all_tenants', an advance "
    "moves the calling key's clock only."
)


def sweep(session: Session, retention_days: int) -> int:
    """Delete every tenant's threads past retention, each by its tenant's clock (the background sweep)."""
    return retention.sweep_every_tenant(
        session, idle_seconds=retention_days * _SECONDS_PER_DAY, server_now=clock.server_now(session)
    )


def advance_clock(ctx: Ctx, seconds: int, *, all_tenants: bool, operator: bool) -> int:
    """Move the calling tenant's time forward (every tenant's, with `all_tenants` and the operator key), then
    delete what the new time has made too old; returns the caller's new time."""
    session, retention_seconds = ctx.session, ctx.settings.thread_retention_days * _SECONDS_PER_DAY
    if all_tenants:
        if not operator:
            raise PermissionDenied(_EVERY_TENANT_NEEDS_OPERATOR, param="all_tenants")
        clocks.advance_every_tenant(session, seconds)
        retention.sweep_every_tenant(session, idle_seconds=retention_seconds, server_now=clock.server_now(session))
    else:
        clocks.advance_tenant(session, ctx.tenant, seconds)
        retention.sweep_tenant(session, ctx.tenant, alive_since=clock.now(session, ctx.tenant) - retention_seconds)
    return clock.now(session, ctx.tenant)


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


def pending_turns(ctx: Ctx) -> list[ScriptedTurn]:
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


def latency(ctx: Ctx) -> dict[str, object] | None:
    """The tenant's latency profile; None when it has none (the server's defaults apply)."""
    settings = control_store.tenant_settings(ctx.session, ctx.tenant)
    return settings.latency if settings is not None else None


def set_latency(ctx: Ctx, body: Latency | None) -> dict[str, object] | None:
    config = body.model_dump(exclude_none=True) if body is not None else None
    control_store.save_tenant_settings(ctx.session, ctx.tenant, latency=config)
    return config
