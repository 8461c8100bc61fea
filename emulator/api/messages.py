"""`/v1/threads/{thread_id}/messages`."""

from __future__ import annotations

from fastapi import APIRouter

from emulator.api.deps import BetaHeader, Pagination, ReadCtx, UnitOfWorkRoute, WriteCtx
from emulator.api.responses import OpenAIJSON, ok
from emulator.schemas.common import render_deleted, render_list
from emulator.schemas.messages import CreateMessage, ModifyMessage, render_message
from emulator.services import messages as service
from emulator.services import runs
from emulator.services.threads import get_live, get_live_ref
from emulator.store import messages as store

router = APIRouter(prefix="/v1/threads/{thread_id}/messages", dependencies=[BetaHeader], route_class=UnitOfWorkRoute)


@router.post("")
def create_message(thread_id: str, body: CreateMessage, ctx: WriteCtx) -> OpenAIJSON:
    thread = get_live_ref(ctx, thread_id, lock=True)
    if thread.active_run_id is not None:  # a run that expired unobserved still holds it: looking frees it
        thread = get_live(ctx, thread_id, lock=True)
        runs.release_expired_holder(ctx, thread)
    return ok(render_message(service.create(ctx, thread, body)))


@router.get("")
def list_messages(thread_id: str, ctx: ReadCtx, page: Pagination, run_id: str | None = None) -> OpenAIJSON:
    get_live_ref(ctx, thread_id)
    return ok(render_list(store.list_page(ctx.session, thread_id, page, run_id=run_id), render_message))


@router.get("/{message_id}")
def retrieve_message(thread_id: str, message_id: str, ctx: ReadCtx) -> OpenAIJSON:
    get_live_ref(ctx, thread_id)
    return ok(render_message(store.read(ctx.session, ctx.tenant, thread_id, message_id)))


@router.post("/{message_id}")
def modify_message(thread_id: str, message_id: str, body: ModifyMessage, ctx: WriteCtx) -> OpenAIJSON:
    get_live(ctx, thread_id)
    return ok(render_message(service.update(ctx, thread_id, message_id, body)))


@router.delete("/{message_id}")
def delete_message(thread_id: str, message_id: str, ctx: WriteCtx) -> OpenAIJSON:
    get_live(ctx, thread_id)
    store.remove(ctx.session, ctx.tenant, thread_id, message_id)
    return ok(render_deleted(message_id, "thread.message.deleted"))
