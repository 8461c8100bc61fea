"""`/_emulator/*`: the control plane for test suites. Not under `/v1`; no beta header.

Every route but health needs a key that `/v1` accepts and acts on that key's tenant only, the clock included:
parallel test suites never see each other's scripts, faults, limits or time. The operator key alone may move
every tenant's clock at once.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import Field
from starlette.background import BackgroundTask

from emulator import __version__, clock, limits, sandbox
from emulator.api.deps import Operator, ReadCtx, ServerReadCtx, WorkerThreadRoute, WriteCtx, runtime
from emulator.api.responses import OpenAIJSON, ok
from emulator.context import Ctx
from emulator.control import clocks, faults, latency, ratelimits, scripts, tenant_reset
from emulator.schemas.common import StrictModel
from emulator.schemas.control import AddFaults, AddTurns, Latency, RateLimits, render_fault, render_turn
from emulator.services import usage

router = APIRouter(prefix="/_emulator", route_class=WorkerThreadRoute)


async def control_write_ctx(request: Request, ctx: WriteCtx) -> Ctx:
    """A change to the tenant's faults, limits or latency: this replica drops its cached copy once the change has
    committed (dropping it before would let a concurrent request cache the old state again)."""
    cache = runtime(request).control
    ctx.after_commit(lambda: cache.invalidate(ctx.tenant))
    return ctx


ControlWriteCtx = Annotated[Ctx, Depends(control_write_ctx)]


class AdvanceClock(StrictModel):
    seconds: Annotated[int, Field(ge=1, le=limits.CLOCK_MAX_ADVANCE_SECONDS)]
    all_tenants: bool = False
    """Move every tenant's clock (the operator key only)."""


@router.get("/health")
def health(ctx: ServerReadCtx) -> OpenAIJSON:
    """Needs no key; `now` is the time of a tenant that never advanced its clock."""
    assert ctx.db is not None
    return ok(
        {
            "status": "ok",
            "version": __version__,
            "database": ctx.db.engine.dialect.name,
            "now": clock.server_now(ctx.session),
            "code_interpreter": sandbox.installed().mode.value,
        }
    )


@router.get("/clock")
def get_clock(ctx: ReadCtx) -> OpenAIJSON:
    return ok({"now": ctx.now})


@router.post("/clock/advance")
def advance_clock(body: AdvanceClock, ctx: WriteCtx, operator: Operator) -> OpenAIJSON:
    return ok({"now": clocks.advance(ctx, body.seconds, all_tenants=body.all_tenants, operator=operator)})


@router.post("/reset")
def reset(ctx: ControlWriteCtx) -> OpenAIJSON:
    paths = tenant_reset.reset_tenant(ctx)
    return ok({"reset": True}, background=BackgroundTask(tenant_reset.remove_paths, paths))


@router.post("/script")
def add_turns(body: AddTurns, ctx: WriteCtx) -> OpenAIJSON:
    return ok({"object": "list", "data": [render_turn(turn) for turn in scripts.add(ctx, body)]})


@router.get("/script")
def pending_turns(ctx: ReadCtx) -> OpenAIJSON:
    return ok({"object": "list", "data": [render_turn(turn) for turn in scripts.pending(ctx)]})


@router.delete("/script")
def clear_turns(ctx: WriteCtx) -> OpenAIJSON:
    return ok({"deleted": scripts.clear(ctx)})


@router.get("/script/consumed")
def consumed_turns(ctx: ReadCtx) -> OpenAIJSON:
    return ok({"object": "list", "data": [render_turn(turn) for turn in scripts.consumed(ctx)]})


@router.post("/faults")
def add_faults(body: AddFaults, ctx: ControlWriteCtx) -> OpenAIJSON:
    return ok({"object": "list", "data": [render_fault(rule) for rule in faults.add(ctx, body)]})


@router.get("/faults")
def list_faults(ctx: ReadCtx) -> OpenAIJSON:
    return ok({"object": "list", "data": [render_fault(rule) for rule in faults.of_tenant(ctx)]})


@router.delete("/faults")
def clear_faults(ctx: ControlWriteCtx) -> OpenAIJSON:
    return ok({"deleted": faults.clear(ctx)})


@router.post("/rate_limits")
def set_rate_limits(body: RateLimits, ctx: ControlWriteCtx) -> OpenAIJSON:
    return ok({"rate_limits": ratelimits.set_rate_limits(ctx, body)})


@router.delete("/rate_limits")
def clear_rate_limits(ctx: ControlWriteCtx) -> OpenAIJSON:
    ratelimits.set_rate_limits(ctx, None)
    return ok({"rate_limits": None})


@router.post("/latency")
def set_latency(body: Latency, ctx: ControlWriteCtx) -> OpenAIJSON:
    return ok({"latency": latency.set_profile(ctx, body)})


@router.get("/latency")
def get_latency(ctx: ReadCtx) -> OpenAIJSON:
    return ok({"latency": latency.configured_profile(ctx)})


@router.delete("/latency")
def clear_latency(ctx: ControlWriteCtx) -> OpenAIJSON:
    latency.set_profile(ctx, None)
    return ok({"latency": None})


@router.get("/usage")
def usage_report(
    ctx: ReadCtx,
    start: Annotated[int | None, Query(ge=0, le=limits.TIMESTAMP_MAX)] = None,
    end: Annotated[int | None, Query(ge=0, le=limits.TIMESTAMP_MAX)] = None,
    group_by: Annotated[str | None, Query(pattern=r"^metadata\.[A-Za-z0-9_.-]{1,64}$")] = None,
) -> OpenAIJSON:
    return ok(usage.report(ctx, start=start, end=end, group_by=group_by))
