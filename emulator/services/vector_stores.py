"""Vector stores: creation, expiry by the emulator clock, activity, views with exact counts, search.

Expiry: with `expires_after {anchor: last_active_at, days}`, `expires_at = last_active_at + days`. Activity
(creation, modification, attaching files, a search) moves `last_active_at` to now. The first time a store is
loaded at or after `expires_at` it becomes `expired` for good (`expired_at` is set): it can still be read,
listed, modified and deleted, but not searched, given files or attached to an assistant or thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from emulator import limits
from emulator.context import Ctx
from emulator.errors import InvalidRequest
from emulator.schemas.vector_stores import (
    CreateVectorStore,
    ExpiresAfter,
    SearchVectorStore,
    StoreView,
    UpdateVectorStore,
)
from emulator.search import Hit, search_chunks, terms
from emulator.services import vector_store_ingest as files
from emulator.store import vector_stores as store
from emulator.store.pagination import Page, PageRequest
from emulator.store.rows import VectorStore

THREAD_STORE_EXPIRES_AFTER: Final = ExpiresAfter(anchor="last_active_at", days=7)
"""The expiry of a store made for a thread (its `tool_resources.file_search.vector_stores` helper, or the
file_search attachments of its messages), as on the hosted API; a store made for an assistant has none."""


def _expire_if_due(ctx: Ctx, row: VectorStore) -> None:
    if row.expired_at is None and row.expires_at is not None and ctx.now >= row.expires_at:
        row.expired_at = row.expires_at


def touch(ctx: Ctx, row: VectorStore) -> None:
    """The store was used: `last_active_at` is now, and the expiry moves with it (never for an expired store)."""
    if row.expired_at is not None:
        return
    row.last_active_at = ctx.now
    days = (row.expires_after or {}).get("days")
    row.expires_at = ctx.now + days * limits.SECONDS_PER_DAY if days else None


def load(ctx: Ctx, store_id: str, *, observe: bool = True) -> VectorStore:
    """The tenant's store (404 otherwise), with expiry applied and its pending files progressed."""
    row = store.get(ctx.session, ctx.tenant, store_id)
    _expire_if_due(ctx, row)
    if observe:
        files.observe(ctx, row)
    return row


def require_active(row: VectorStore) -> None:
    if row.expired_at is not None:
        raise InvalidRequest(
            f"Vector store {row.id} has expired and can no longer be used. Create a new vector store.",
            param="vector_store_id",
            code="vector_store_expired",
        )


def view(ctx: Ctx, row: VectorStore) -> StoreView:
    return StoreView(row, store.tallies(ctx.session, [row.id])[row.id])


def views(ctx: Ctx, rows: Sequence[VectorStore]) -> list[StoreView]:
    tallies = store.tallies(ctx.session, [row.id for row in rows])
    return [StoreView(row, tallies[row.id]) for row in rows]


def create(ctx: Ctx, body: CreateVectorStore, *, file_ids_param: str = "file_ids") -> VectorStore:
    file_ids = list(dict.fromkeys(body.file_ids or []))
    sources = files.require_files(ctx, file_ids, file_ids_param)
    row = store.create(
        ctx.session,
        store_id=ctx.ids.new("vector_store"),
        tenant=ctx.tenant,
        now=ctx.now,
        name=body.name,
        description=body.description,
        metadata=body.metadata or {},
        expires_after=body.expires_after.model_dump() if body.expires_after else None,
    )
    touch(ctx, row)
    for file_id in file_ids:
        files.attach(ctx, row, sources[file_id], chunking_strategy=body.chunking_strategy, attributes=None)
    return row


def create_for_tool_resources(
    ctx: Ctx, spec: Any, index: int = 0, *, expires_after: ExpiresAfter | None = None
) -> VectorStore:
    """The `tool_resources.file_search.vector_stores[index]` helper of assistant and thread creation."""
    body = CreateVectorStore.model_construct(
        name=None,
        description=None,
        file_ids=spec.file_ids,
        expires_after=expires_after,
        chunking_strategy=spec.chunking_strategy,
        metadata=spec.metadata,
    )
    return create(ctx, body, file_ids_param=f"tool_resources.file_search.vector_stores[{index}].file_ids")


def list_page(ctx: Ctx, page: PageRequest) -> Page[VectorStore]:
    result = store.list_page(ctx.session, ctx.tenant, page)
    for row in result.rows:
        _expire_if_due(ctx, row)
        files.observe(ctx, row)
    return result


def update(ctx: Ctx, store_id: str, body: UpdateVectorStore) -> VectorStore:
    row = load(ctx, store_id)
    given = body.model_fields_set
    if "name" in given:
        row.name = body.name
    if "metadata" in given:
        row.metadata_ = body.metadata or {}
    if "expires_after" in given:
        row.expires_after = body.expires_after.model_dump() if body.expires_after else None
    touch(ctx, row)
    return row


def delete(ctx: Ctx, store_id: str) -> None:
    store.remove(ctx.session, store.get(ctx.session, ctx.tenant, store_id, lock=True))


def require_usable(ctx: Ctx, store_ids: Sequence[str], param: str) -> None:
    """400 unless every id names a store of the tenant that has not expired (assistant and thread resources)."""
    found = store.find(ctx.session, ctx.tenant, store_ids)
    for store_id in store_ids:
        row = found.get(store_id)
        if row is None:
            raise InvalidRequest(f"Invalid '{param}': no vector store found with id '{store_id}'.", param=param)
        _refuse_expired(ctx, row, param)


def find_usable(ctx: Ctx, store_id: str, param: str) -> VectorStore | None:
    """The tenant's store, None if there is none (deleted), 400 if it has expired."""
    row = store.find(ctx.session, ctx.tenant, [store_id]).get(store_id)
    if row is not None:
        _refuse_expired(ctx, row, param)
    return row


def _refuse_expired(ctx: Ctx, row: VectorStore, param: str) -> None:
    _expire_if_due(ctx, row)
    if row.expired_at is not None:
        raise InvalidRequest(
            f"Invalid '{param}': vector store '{row.id}' has expired and can no longer be used.", param=param
        )


def progress_pending(ctx: Ctx, store_ids: Sequence[str], *, until_done: bool) -> bool:
    """Observe the in-progress files of these stores (those that exist and have not expired) once, or until
    they are done; True while any is still in progress."""
    pending = False
    for row in store.find(ctx.session, ctx.tenant, store_ids).values():
        _expire_if_due(ctx, row)
        if row.expired_at is None:
            pending = files.progress_pending(ctx, row, until_done=until_done) or pending
    return pending


def prepare_for_search(ctx: Ctx, store_ids: Sequence[str]) -> list[str]:
    """For a file_search call: progress the stores' pending files, mark them active, and return the ids of
    those that exist and have not expired (in the given order)."""
    usable = []
    found = store.find(ctx.session, ctx.tenant, store_ids)
    for store_id in store_ids:
        row = found.get(store_id)
        if row is None:
            continue
        _expire_if_due(ctx, row)
        if row.expired_at is not None:
            continue
        files.observe(ctx, row)
        touch(ctx, row)
        usable.append(store_id)
    return usable


def search(ctx: Ctx, store_id: str, body: SearchVectorStore) -> tuple[list[str], list[Hit]]:
    row = load(ctx, store_id)
    require_active(row)
    touch(ctx, row)
    queries = [body.query] if isinstance(body.query, str) else list(body.query)
    if body.rewrite_query:
        queries = [terms.rewrite_query(query) for query in queries]
    threshold = body.ranking_options.score_threshold if body.ranking_options else 0.0
    hits = search_chunks(
        ctx.session,
        ctx.tenant,
        [row.id],
        queries,
        body.max_num_results,
        threshold,
        body.filters.model_dump() if body.filters else None,
    )
    return queries, hits
