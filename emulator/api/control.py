"""`/_emulator/*`: the control plane for test suites (clock, health, reset). No beta header needed."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import Field
from starlette.background import BackgroundTask

from emulator import __version__, clock
from emulator.api.deps import WriteCtx, runtime
from emulator.api.responses import OpenAIJSON, ok
from emulator.schemas.common import StrictModel
from emulator.services import control

router = APIRouter(prefix="/_emulator")


class AdvanceClock(StrictModel):
    seconds: Annotated[int, Field(ge=0)]


@router.get("/health")
def health(request: Request) -> OpenAIJSON:
    rt = runtime(request)
    with rt.db.transaction(write=False) as session:
        now = clock.now(session)
    return ok({"status": "ok", "version": __version__, "database": rt.db.engine.dialect.name, "now": now})


@router.get("/clock")
def get_clock(request: Request) -> OpenAIJSON:
    with runtime(request).db.transaction(write=False) as session:
        return ok({"now": clock.now(session)})


@router.post("/clock/advance")
def advance_clock(body: AdvanceClock, request: Request) -> OpenAIJSON:
    rt = runtime(request)
    with rt.db.transaction() as session:
        now = control.advance_clock(session, body.seconds, rt.settings.thread_retention_days)
    return ok({"now": now})


@router.post("/reset")
def reset(ctx: WriteCtx) -> OpenAIJSON:
    paths = control.reset_tenant(ctx)
    return ok({"reset": True}, background=BackgroundTask(control.remove_paths, paths))
