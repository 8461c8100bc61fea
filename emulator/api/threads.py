"""`/v1/threads` (create-and-run lives with runs)."""

from __future__ import annotations

from fastapi import APIRouter

from emulator.api.deps import BetaHeader, ReadCtx, UnitOfWorkRoute, WriteCtx
from emulator.api.responses import OpenAIJSON, ok
from emulator.schemas.common import render_deleted
from emulator.schemas.threads import CreateThread, ModifyThread, render_thread
from emulator.services import threads as service

router = APIRouter(prefix="/v1/threads", dependencies=[BetaHeader], route_class=UnitOfWorkRoute)


@router.post("")
def create_thread(ctx: WriteCtx, body: CreateThread | None = None) -> OpenAIJSON:
    return ok(render_thread(service.create(ctx, body or CreateThread())))


@router.get("/{thread_id}")
def retrieve_thread(thread_id: str, ctx: ReadCtx) -> OpenAIJSON:
    return ok(render_thread(service.get_live(ctx, thread_id)))


@router.post("/{thread_id}")
def modify_thread(thread_id: str, body: ModifyThread, ctx: WriteCtx) -> OpenAIJSON:
    return ok(render_thread(service.update(ctx, thread_id, body)))


@router.delete("/{thread_id}")
def delete_thread(thread_id: str, ctx: WriteCtx) -> OpenAIJSON:
    service.delete(ctx, thread_id)
    return ok(render_deleted(thread_id, "thread.deleted"))
