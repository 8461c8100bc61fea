"""File batches: many files attached in one request, polled and cancelled together.

A batch's counts are those of the files it attached (a file re-attached later by another batch or request
moves there). Its status: `cancelled` once cancelled; else `in_progress` while a file is; else `failed` when
every file failed, `completed` otherwise.
"""

from __future__ import annotations

from emulator.context import Ctx
from emulator.errors import InvalidRequest
from emulator.schemas.vector_stores import CreateFileBatch
from emulator.services import vector_store_ingest as files
from emulator.services import vector_stores
from emulator.store import vector_store_files as store
from emulator.store.rows import VectorStoreFileBatch
from emulator.store.vector_store_files import FileCounts


def status_of(row: VectorStoreFileBatch, counts: FileCounts) -> str:
    if row.cancelled_at is not None:
        return "cancelled"
    if counts.in_progress:
        return "in_progress"
    if counts.total and counts.failed == counts.total:
        return "failed"
    return "completed"


def create(ctx: Ctx, store_id: str, body: CreateFileBatch) -> VectorStoreFileBatch:
    vector_store = vector_stores.load(ctx, store_id, observe=False)
    vector_stores.require_active(vector_store)
    if body.file_ids is not None and body.files is not None:
        raise InvalidRequest(
            "Invalid 'files': 'file_ids' and 'files' are mutually exclusive; provide only one of them.",
            param="files",
            code="invalid_value",
        )
    if body.file_ids is None and body.files is None:
        raise InvalidRequest(
            "Missing required parameter: 'file_ids' (or 'files').", param="file_ids", code="missing_required_parameter"
        )
    if body.files is not None:
        entries = [(item.file_id, item.chunking_strategy, item.attributes) for item in body.files]
        param = "files"
    else:
        entries = [(file_id, body.chunking_strategy, body.attributes) for file_id in body.file_ids or []]
        param = "file_ids"
    unique = list({file_id: (file_id, strategy, attrs) for file_id, strategy, attrs in entries}.values())
    sources = files.require_files(ctx, [file_id for file_id, _, _ in unique], param)
    files.require_room(ctx, vector_store, [file_id for file_id, _, _ in unique])
    batch = store.add_batch(
        ctx.session, batch_id=ctx.ids.new("file_batch"), tenant=ctx.tenant, store_id=vector_store.id, now=ctx.now
    )
    for file_id, strategy, attributes in unique:
        files.attach(
            ctx, vector_store, sources[file_id], chunking_strategy=strategy, attributes=attributes, batch_id=batch.id
        )
    vector_stores.touch(ctx, vector_store)
    return batch


def load(ctx: Ctx, store_id: str, batch_id: str, *, observe: bool = True) -> VectorStoreFileBatch:
    vector_store = vector_stores.load(ctx, store_id, observe=False)
    batch = store.get_batch(ctx.session, vector_store.id, batch_id)
    if observe:
        files.observe(ctx, vector_store, batch_id=batch.id)
    return batch


def view(ctx: Ctx, batch: VectorStoreFileBatch) -> tuple[FileCounts, str]:
    counts = store.batch_counts(ctx.session, batch.id)
    return counts, status_of(batch, counts)


def cancel(ctx: Ctx, store_id: str, batch_id: str) -> VectorStoreFileBatch:
    vector_store = vector_stores.load(ctx, store_id, observe=False)
    batch = store.get_batch(ctx.session, vector_store.id, batch_id, lock=True)
    _, status = view(ctx, batch)
    if status != "in_progress":
        raise InvalidRequest(f"Cannot cancel vector store file batch {batch.id}: its status is {status}.", param=None)
    files.cancel_pending(ctx, vector_store, batch.id)
    batch.cancelled_at = ctx.now
    return batch
