"""`/v1/assistants`."""

from __future__ import annotations

from fastapi import APIRouter

from emulator.api.deps import BetaHeader, Pagination, ReadCtx, UnitOfWorkRoute, WriteCtx
from emulator.api.responses import OpenAIJSON, ok
from emulator.schemas.assistants import CreateAssistant, ModifyAssistant, render_assistant
from emulator.schemas.common import render_deleted, render_list
from emulator.services import assistants as service

router = APIRouter(prefix="/v1/assistants", dependencies=[BetaHeader], route_class=UnitOfWorkRoute)


@router.post("")
def create_assistant(body: CreateAssistant, ctx: WriteCtx) -> OpenAIJSON:
    return ok(render_assistant(service.create(ctx, body)))


@router.get("")
def list_assistants(ctx: ReadCtx, page: Pagination) -> OpenAIJSON:
    return ok(render_list(service.list_page(ctx, page), render_assistant))


@router.get("/{assistant_id}")
def retrieve_assistant(assistant_id: str, ctx: ReadCtx) -> OpenAIJSON:
    return ok(render_assistant(service.get(ctx, assistant_id)))


@router.post("/{assistant_id}")
def modify_assistant(assistant_id: str, body: ModifyAssistant, ctx: WriteCtx) -> OpenAIJSON:
    return ok(render_assistant(service.update(ctx, assistant_id, body)))


@router.delete("/{assistant_id}")
def delete_assistant(assistant_id: str, ctx: WriteCtx) -> OpenAIJSON:
    service.delete(ctx, assistant_id)
    return ok(render_deleted(assistant_id, "assistant.deleted"))
