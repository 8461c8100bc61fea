"""`/v1/vector_stores/{vector_store_id}/files` (beta header accepted, not required: see api/vector_stores.py)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter

from emulator.api.deps import Pagination, WorkerThreadRoute, WriteCtx
from emulator.api.responses import OpenAIJSON, ok
from emulator.context import Ctx
from emulator.schemas.common import render_deleted, render_list
from emulator.schemas.vector_stores import (
    CreateVectorStoreFile,
    UpdateVectorStoreFile,
    render_file_content,
    render_vector_store_file,
)
from emulator.services import vector_store_files as service

router = APIRouter(prefix="/v1/vector_stores/{vector_store_id}/files", route_class=WorkerThreadRoute)

FileStatus = Literal["in_progress", "completed", "failed", "cancelled"]


def poll_after(ctx: Ctx) -> dict[str, str]:
    """The SDK's file and batch pollers sleep this long between reads (else one second)."""
    return {"openai-poll-after-ms": str(ctx.settings.poll_after_ms)}


@router.post("")
def create_vector_store_file(vector_store_id: str, body: CreateVectorStoreFile, ctx: WriteCtx) -> OpenAIJSON:
    return ok(render_vector_store_file(service.create(ctx, vector_store_id, body)), headers=poll_after(ctx))


@router.get("")
def list_vector_store_files(
    vector_store_id: str, ctx: WriteCtx, page: Pagination, filter: FileStatus | None = None
) -> OpenAIJSON:
    return ok(render_list(service.list_page(ctx, vector_store_id, page, filter), render_vector_store_file))


@router.get("/{file_id}")
def retrieve_vector_store_file(vector_store_id: str, file_id: str, ctx: WriteCtx) -> OpenAIJSON:
    return ok(render_vector_store_file(service.load(ctx, vector_store_id, file_id)), headers=poll_after(ctx))


@router.post("/{file_id}")
def update_vector_store_file(
    vector_store_id: str, file_id: str, body: UpdateVectorStoreFile, ctx: WriteCtx
) -> OpenAIJSON:
    return ok(render_vector_store_file(service.update(ctx, vector_store_id, file_id, body)))


@router.delete("/{file_id}")
def delete_vector_store_file(vector_store_id: str, file_id: str, ctx: WriteCtx) -> OpenAIJSON:
    service.delete(ctx, vector_store_id, file_id)
    return ok(render_deleted(file_id, "vector_store.file.deleted"))


@router.get("/{file_id}/content")
def retrieve_vector_store_file_content(vector_store_id: str, file_id: str, ctx: WriteCtx) -> OpenAIJSON:
    return ok(render_file_content(service.content(ctx, vector_store_id, file_id)))
