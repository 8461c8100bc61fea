"""Files entering vector stores: attaching, progression and ingestion (parse, chunk, index).

Progression follows the runs' policy (`settings.run_progression`): an attached file is `in_progress` until it
is observed — by a read of the file, of its batch, of its store, of a file list or by a search — and then,
under `immediate`, ingested at once inside that request's transaction; under `polls:N`, on its N-th
observation. There is no background worker, so every state lives in the database and any replica can finish
the work. Ingestion ends the file `completed` (chunks and index written) or `failed` with `last_error`.

`usage_bytes` of a file is the number of UTF-8 bytes of its stored chunk texts (overlapping text is counted in
each chunk that holds it, as it is stored twice); a store's usage is the sum over its files.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from emulator import limits
from emulator.context import Ctx
from emulator.db import require_worker_thread
from emulator.errors import InvalidRequest
from emulator.ingest import chunking, parsers
from emulator.search import terms
from emulator.store import files as file_store
from emulator.store import vector_store_files as store
from emulator.store import vector_store_index as index
from emulator.store.rows import File, VectorStore, VectorStoreFile

log = logging.getLogger("emulator.vector_stores")


def progression_ready(ctx: Ctx, observations: int) -> bool:
    policy = ctx.settings.run_progression
    if policy == "immediate":
        return True
    return observations >= int(policy.split(":", 1)[1])


def require_files(ctx: Ctx, file_ids: list[str], param: str) -> dict[str, File]:
    """400 unless every id names a live file of the tenant; returns the rows by id."""
    file_store.require_existing(ctx.session, ctx.tenant, file_ids, param=param, now=ctx.now)
    return file_store.live(ctx.session, ctx.tenant, file_ids, now=ctx.now)


def require_room(ctx: Ctx, vector_store: VectorStore, file_ids: list[str], param: str = "file_ids") -> None:
    """400 if attaching these files (those not attached yet) would take the store past its file limit."""
    present = store.count(ctx.session, vector_store.id)
    adding = len(file_ids) - store.count_attached(ctx.session, vector_store.id, file_ids)
    if adding and present + adding > limits.VECTOR_STORE_MAX_FILES:
        raise InvalidRequest(
            f"Vector store {vector_store.id} can hold at most {limits.VECTOR_STORE_MAX_FILES} files; it has "
            f"{present} and this request adds {adding}.",
            param=param,
            code="vector_store_file_limit_exceeded",
        )


def attach(
    ctx: Ctx,
    vector_store: VectorStore,
    file: File,
    *,
    chunking_strategy: Any | None,
    attributes: dict[str, Any] | None,
    batch_id: str | None = None,
) -> VectorStoreFile:
    """Attach (or re-attach: the file is processed again) a file to a store; it starts `in_progress`."""
    sizes = chunking.resolve_strategy(chunking_strategy)
    existing = store.find(ctx.session, vector_store.id, file.id)
    if existing is not None:
        store.remove(ctx.session, existing)
    return store.add(
        ctx.session,
        tenant=ctx.tenant,
        store_id=vector_store.id,
        store_seq=vector_store.seq,
        upload=file,
        now=ctx.now,
        chunking_strategy=sizes,
        attributes=attributes or {},
        batch_id=batch_id,
    )


def observe(ctx: Ctx, vector_store: VectorStore, *, batch_id: str | None = None, file_id: str | None = None) -> None:
    """Someone looked: let the store's (batch's, file's) in-progress files progress as the policy allows."""
    for row in store.in_progress(ctx.session, store_id=vector_store.id, batch_id=batch_id, file_id=file_id):
        row.observations += 1
        if progression_ready(ctx, row.observations):
            ingest(ctx, row)


def progress_pending(ctx: Ctx, vector_store: VectorStore, *, until_done: bool) -> bool:
    """For a run waiting on its thread's files: observe the store's in-progress files once, or (a run driven by
    a stream, which watches without pause) as many times as the policy needs to finish them. True while any is
    still in progress."""
    pending = False
    for row in store.in_progress(ctx.session, store_id=vector_store.id):
        row.observations += 1
        while until_done and not progression_ready(ctx, row.observations):
            row.observations += 1
        if progression_ready(ctx, row.observations):
            ingest(ctx, row)
        pending = pending or row.status == "in_progress"
    return pending


def _fail(row: VectorStoreFile, code: str, message: str) -> None:
    row.status = "failed"
    row.last_error = {"code": code, "message": message}


def ingest(ctx: Ctx, row: VectorStoreFile) -> None:
    """Parse, chunk and index one file; never raises for a bad file (it ends `failed`)."""
    require_worker_thread("parsing a document may take long")
    source = file_store.live(ctx.session, ctx.tenant, [row.id], now=ctx.now).get(row.id)
    if source is None:
        _fail(row, "invalid_file", f"The file {row.id} was deleted before it could be processed.")
        return
    try:
        data = Path(source.storage_path).read_bytes()
    except OSError:
        _fail(row, "invalid_file", f"The contents of file {row.id} could not be read.")
        return
    try:
        text = parsers.extract_text(source.filename, data)
    except parsers.IngestError as error:
        _fail(row, error.code, error.message)
        return
    sizes = row.chunking_strategy
    pieces = chunking.chunk_text(text, sizes["max_chunk_size_tokens"], sizes["chunk_overlap_tokens"])
    indexed = []
    for piece in pieces:
        counts, length = terms.term_frequencies(piece.text)
        indexed.append(index.IndexedChunk(piece.text, piece.tokens, length, dict(counts)))
    index.write_file(ctx.session, store_seq=row.store_seq, file_seq=row.seq, chunks=indexed)
    row.usage_bytes = sum(len(chunk.text.encode("utf-8")) for chunk in indexed)
    row.chunk_count = len(indexed)
    row.term_count = sum(chunk.length for chunk in indexed)
    store.set_content(ctx.session, row, text)
    row.status = "completed"


def cancel_pending(ctx: Ctx, vector_store: VectorStore, batch_id: str) -> int:
    """Stop a batch's files that have not been processed yet; returns how many were cancelled."""
    pending = store.in_progress(ctx.session, store_id=vector_store.id, batch_id=batch_id)
    for row in pending:
        row.status = "cancelled"
    return len(pending)
