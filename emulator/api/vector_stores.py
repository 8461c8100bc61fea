"""`/v1/vector_stores` and its search.

The SDKs send `OpenAI-Beta: assistants=v2` on every vector store call; the real API does not require it here
(vector stores also serve the Responses API), so it is accepted and not required. Every route, reads
included, takes a write transaction: reading a store lets its pending files progress and applies expiry.
"""

from __future__ import annotations

from fastapi import APIRouter

from emulator.api.deps import Pagination, WorkerThreadRoute, WriteCtx
from emulator.api.responses import OpenAIJSON, ok
from emulator.schemas.common import render_deleted
from emulator.schemas.vector_stores import (
    CreateVectorStore,
    SearchVectorStore,
    UpdateVectorStore,
    render_search_page,
    render_vector_store,
)
from emulator.services import vector_stores as service

router = APIRouter(prefix="/v1/vector_stores", route_class=WorkerThreadRoute)


@router.post("")
def create_vector_store(body: CreateVectorStore, ctx: WriteCtx) -> OpenAIJSON:
    return ok(render_vector_store(service.view(ctx, service.create(ctx, body))))


@router.get("")
def list_vector_stores(ctx: WriteCtx, page: Pagination) -> OpenAIJSON:
    result = service.list_page(ctx, page)
    data = [render_vector_store(view) for view in service.views(ctx, result.rows)]
    return ok(
        {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": result.has_more,
        }
    )


@router.get("/{vector_store_id}")
def retrieve_vector_store(vector_store_id: str, ctx: WriteCtx) -> OpenAIJSON:
    return ok(render_vector_store(service.view(ctx, service.load(ctx, vector_store_id))))


@router.post("/{vector_store_id}")
def modify_vector_store(vector_store_id: str, body: UpdateVectorStore, ctx: WriteCtx) -> OpenAIJSON:
    return ok(render_vector_store(service.view(ctx, service.update(ctx, vector_store_id, body))))


@router.delete("/{vector_store_id}")
def delete_vector_store(vector_store_id: str, ctx: WriteCtx) -> OpenAIJSON:
    service.delete(ctx, vector_store_id)
    return ok(render_deleted(vector_store_id, "vector_store.deleted"))


@router.post("/{vector_store_id}/search")
def search_vector_store(vector_store_id: str, body: SearchVectorStore, ctx: WriteCtx) -> OpenAIJSON:
    queries, hits = service.search(ctx, vector_store_id, body)
    return ok(render_search_page(queries, hits))
