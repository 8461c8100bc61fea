"""Moving the tenants' clocks, and what follows time: an advance brings the runs' due times as much sooner (the
runners, woken by the advance's notification, `runs.hub`, advance those now due), and deletes at once what the
new time has made too old; the background sweep deletes what the passing of real time has."""

from __future__ import annotations

from sqlalchemy.orm import Session

from emulator import clock
from emulator.context import Ctx
from emulator.errors import PermissionDenied
from emulator.limits import SECONDS_PER_DAY
from emulator.store import clocks, retention, runs

_EVERY_TENANT_NEEDS_OPERATOR = (
    "Moving every tenant's clock needs the operator key (EMULATOR_ADMIN_KEY); without 'all_tenants', an advance "
    "moves the calling key's clock only."
)


def sweep(session: Session, retention_days: int) -> int:
    """Delete every tenant's threads past retention, each by its tenant's clock (the background sweep)."""
    return retention.sweep_every_tenant(
        session, idle_seconds=retention_days * SECONDS_PER_DAY, server_now=clock.server_now(session)
    )


def advance(ctx: Ctx, seconds: int, *, all_tenants: bool, operator: bool) -> int:
    """Move the calling tenant's time forward (every tenant's, with `all_tenants` and the operator key), then
    delete what the new time has made too old; returns the caller's new time."""
    session, retention_seconds = ctx.session, ctx.settings.thread_retention_days * SECONDS_PER_DAY
    if all_tenants:
        if not operator:
            raise PermissionDenied(_EVERY_TENANT_NEEDS_OPERATOR, param="all_tenants")
        clocks.advance_every_tenant(session, seconds)
        runs.bring_due_forward(session, seconds)
        retention.sweep_every_tenant(session, idle_seconds=retention_seconds, server_now=clock.server_now(session))
    else:
        clocks.advance_tenant(session, ctx.tenant, seconds)
        runs.bring_due_forward(session, seconds, ctx.tenant)
        retention.sweep_tenant(session, ctx.tenant, alive_since=clock.now(session, ctx.tenant) - retention_seconds)
    return clock.now(session, ctx.tenant)
