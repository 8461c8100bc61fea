"""`/v1/threads/{thread_id}/messages`."""

from __future__ import annotations

from fastapi import APIRouter

from emulator.api.deps import BetaHeader, Pagination, ReadCtx, UnitOfWorkRoute, WriteCtx
from emulator.api.responses import OpenAIJSON, ok
from emulator.schemas.common import render_deleted, render_list
from emulator.schemas.messages import CreateMessage, ModifyMessage, render_message
from emulator.services import messages as service

router = APIRouter(prefix="/v1/threads/{thread_id}/messages", dependencies=[BetaHeader], route_class=UnitOfWorkRoute)


@router.post("")
def create_message(thread_id: str, body: CreateMessage, ctx: WriteCtx) -> OpenAIJSON:
    return ok(render_message(service.create(ctx, thread_id, body)))


@router.get("")
def list_messages(thread_id: str, ctx: ReadCtx, page: Pagination, run_id: str | None = None) -> OpenAIJSON:
    return ok(render_list(service.list_page(ctx, thread_id, page, run_id=run_id), render_message))


@router.get("/{message_id}")
def retrieve_message(thread_id: str, message_id: str, ctx: ReadCtx) -> OpenAIJSON:
    return ok(render_message(service.get(ctx, thread_id, message_id)))


@router.post("/{message_id}")
def modify_message(thread_id: str, message_id: str, body: ModifyMessage, ctx: WriteCtx) -> OpenAIJSON:
    return ok(render_message(service.update(ctx, thread_id, message_id, body)))


@router.delete("/{message_id}")
def delete_message(thread_id: str, message_id: str, ctx: WriteCtx) -> OpenAIJSON:
    service.delete(ctx, thread_id, message_id)
    return ok(render_deleted(message_id, "thread.message.deleted"))
