"""`/v1/vector_stores/{vector_store_id}/file_batches` (beta header accepted, not required)."""

from __future__ import annotations

from fastapi import APIRouter

from emulator.api.deps import Pagination, WorkerThreadRoute, WriteCtx
from emulator.api.responses import OpenAIJSON, ok
from emulator.api.vector_store_files import FileStatus, poll_after
from emulator.context import Ctx
from emulator.schemas.common import render_list
from emulator.schemas.vector_stores import CreateFileBatch, render_file_batch, render_vector_store_file
from emulator.services import vector_store_file_batches as service
from emulator.services import vector_store_files
from emulator.store.rows import VectorStoreFileBatch

router = APIRouter(prefix="/v1/vector_stores/{vector_store_id}/file_batches", route_class=WorkerThreadRoute)


def _render(ctx: Ctx, batch: VectorStoreFileBatch) -> OpenAIJSON:
    counts, status = service.view(ctx, batch)
    return ok(render_file_batch(batch, counts, status), headers=poll_after(ctx))


@router.post("")
def create_file_batch(vector_store_id: str, body: CreateFileBatch, ctx: WriteCtx) -> OpenAIJSON:
    return _render(ctx, service.create(ctx, vector_store_id, body))


@router.get("/{batch_id}")
def retrieve_file_batch(vector_store_id: str, batch_id: str, ctx: WriteCtx) -> OpenAIJSON:
    return _render(ctx, service.load(ctx, vector_store_id, batch_id))


@router.post("/{batch_id}/cancel")
def cancel_file_batch(vector_store_id: str, batch_id: str, ctx: WriteCtx) -> OpenAIJSON:
    return _render(ctx, service.cancel(ctx, vector_store_id, batch_id))


@router.get("/{batch_id}/files")
def list_file_batch_files(
    vector_store_id: str, batch_id: str, ctx: WriteCtx, page: Pagination, filter: FileStatus | None = None
) -> OpenAIJSON:
    result = vector_store_files.list_batch_page(ctx, vector_store_id, batch_id, page, filter)
    return ok(render_list(result, render_vector_store_file))
