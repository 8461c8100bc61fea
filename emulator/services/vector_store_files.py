"""The `/vector_stores/{id}/files` resource: attach one file, read, list, relabel, detach, read its text."""

from __future__ import annotations

from emulator.context import Ctx
from emulator.schemas.vector_stores import CreateVectorStoreFile, UpdateVectorStoreFile
from emulator.services import vector_store_ingest as ingest
from emulator.services import vector_stores
from emulator.store import vector_store_files as store
from emulator.store.pagination import Page, PageRequest
from emulator.store.rows import VectorStoreFile


def create(ctx: Ctx, store_id: str, body: CreateVectorStoreFile) -> VectorStoreFile:
    vector_store = vector_stores.load(ctx, store_id, observe=False)
    vector_stores.require_active(vector_store)
    source = ingest.require_files(ctx, [body.file_id], "file_id")[body.file_id]
    ingest.require_room(ctx, vector_store, [body.file_id])
    row = ingest.attach(ctx, vector_store, source, chunking_strategy=body.chunking_strategy, attributes=body.attributes)
    vector_stores.touch(ctx, vector_store)
    return row


def load(ctx: Ctx, store_id: str, file_id: str, *, observe: bool = True) -> VectorStoreFile:
    vector_store = vector_stores.load(ctx, store_id, observe=False)
    if observe:
        ingest.observe(ctx, vector_store, file_id=file_id)
    return store.get(ctx.session, vector_store.id, file_id)


def list_page(ctx: Ctx, store_id: str, page: PageRequest, status: str | None) -> Page[VectorStoreFile]:
    vector_store = vector_stores.load(ctx, store_id)
    return store.list_page(ctx.session, vector_store.id, page, status=status)


def list_batch_page(
    ctx: Ctx, store_id: str, batch_id: str, page: PageRequest, status: str | None
) -> Page[VectorStoreFile]:
    vector_store = vector_stores.load(ctx, store_id, observe=False)
    batch = store.get_batch(ctx.session, vector_store.id, batch_id)
    ingest.observe(ctx, vector_store, batch_id=batch.id)
    return store.list_page(ctx.session, vector_store.id, page, status=status, batch_id=batch.id)


def update(ctx: Ctx, store_id: str, file_id: str, body: UpdateVectorStoreFile) -> VectorStoreFile:
    row = load(ctx, store_id, file_id)
    row.attributes = body.attributes or {}
    return row


def delete(ctx: Ctx, store_id: str, file_id: str) -> None:
    """Detach the file from the store (chunks and index go); the uploaded file itself stays."""
    vector_store = vector_stores.load(ctx, store_id, observe=False)
    store.remove(ctx.session, store.get(ctx.session, vector_store.id, file_id, lock=True))


def content(ctx: Ctx, store_id: str, file_id: str) -> str:
    row = load(ctx, store_id, file_id)
    return store.content(ctx.session, row) if row.status == "completed" else ""
