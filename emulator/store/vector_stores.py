"""Vector stores: the only SQL over `vector_stores`, and the deletes that take a store's files and index with it.

File counts and usage are aggregates over `vector_store_files` (one GROUP BY), so they are exact by
construction: the SDK's batch poller loops while `file_counts.in_progress > 0`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.orm import Session

from emulator.errors import NotFound
from emulator.store import statements
from emulator.store import vector_store_files as files
from emulator.store import vector_store_index as index
from emulator.store import vector_store_tables as tables
from emulator.store.pagination import Listing, Page, PageRequest
from emulator.store.records import Table
from emulator.store.rows import VectorStore
from emulator.store.vector_store_files import FileCounts
from emulator.tables import VectorStoreRow

VECTOR_STORES = Table(VectorStore)

_IN_BATCH = 500
"""Ids per `IN (...)` list: well under SQLite's and PostgreSQL's bound-parameter limits."""


@dataclass(frozen=True)
class StoreTally:
    """The aggregates over a store's files that its rendering needs."""

    counts: FileCounts
    usage_bytes: int


def create(
    session: Session,
    *,
    store_id: str,
    tenant: str,
    now: int,
    name: str | None,
    description: str | None,
    metadata: dict[str, Any],
    expires_after: dict[str, Any] | None,
) -> VectorStore:
    """Insert a store, active now and not expiring (the caller applies `expires_after`)."""
    return VECTOR_STORES.insert(
        session,
        {
            "id": store_id,
            "tenant": tenant,
            "created_at": now,
            "name": name,
            "description": description,
            "metadata_": metadata,
            "expires_after": expires_after,
            "last_active_at": now,
            "expires_at": None,
            "expired_at": None,
        },
    )


_BY_ID = statements.prepared(
    statements.select_columns(
        VectorStoreRow, VectorStoreRow.tenant == bindparam("tenant"), VectorStoreRow.id == bindparam("store_id")
    )
)
_BY_ID_LOCKED = statements.prepared(_BY_ID.with_for_update())


def get(session: Session, tenant: str, store_id: str, *, lock: bool = False) -> VectorStore:
    """The tenant's store (404 otherwise); `lock` takes its row lock (PostgreSQL) before it is deleted."""
    row = VECTOR_STORES.load(session, _BY_ID_LOCKED if lock else _BY_ID, {"tenant": tenant, "store_id": store_id})
    if row is None:
        raise NotFound.object("vector store", store_id)
    return row


def find(session: Session, tenant: str, store_ids: Sequence[str]) -> dict[str, VectorStore]:
    """The tenant's stores among `store_ids`, by id (those that do not exist are left out)."""
    if len(store_ids) == 1:
        row = VECTOR_STORES.load(session, _BY_ID, {"tenant": tenant, "store_id": store_ids[0]})
        return {} if row is None else {row.id: row}
    found: dict[str, VectorStore] = {}
    wanted = list(dict.fromkeys(store_ids))
    for start in range(0, len(wanted), _IN_BATCH):
        query = statements.select_columns(
            VectorStoreRow, VectorStoreRow.tenant == tenant, VectorStoreRow.id.in_(wanted[start : start + _IN_BATCH])
        )
        found.update({row.id: row for row in VECTOR_STORES.load_all(session, query, {})})
    return found


_OF_TENANT = Listing(
    VECTOR_STORES, statements.select_columns(VectorStoreRow, VectorStoreRow.tenant == bindparam("tenant"))
)


def list_page(session: Session, tenant: str, page: PageRequest) -> Page[VectorStore]:
    return _OF_TENANT.page(session, page, {"tenant": tenant})


_DELETE_FILES = statements.prepared(
    delete(tables.VECTOR_STORE_FILES).where(tables.VECTOR_STORE_FILES.c.vector_store_id == bindparam("store_id"))
)
_DELETE_BATCHES = statements.prepared(
    delete(tables.VECTOR_STORE_FILE_BATCHES).where(
        tables.VECTOR_STORE_FILE_BATCHES.c.vector_store_id == bindparam("store_id")
    )
)
_DELETE_STORE = statements.prepared(
    delete(tables.VECTOR_STORES).where(tables.VECTOR_STORES.c.seq == bindparam("store_seq"))
)


def remove(session: Session, row: VectorStore) -> None:
    """Delete the store with its files, batches, chunks and index."""
    index.remove_store(session, row.seq)
    statements.execute(session, _DELETE_FILES, {"store_id": row.id})
    statements.execute(session, _DELETE_BATCHES, {"store_id": row.id})
    statements.execute(session, _DELETE_STORE, {"store_seq": row.seq})


_OF_TENANT_ALL = statements.prepared(
    statements.select_columns(VectorStoreRow, VectorStoreRow.tenant == bindparam("tenant"))
)


def remove_tenant(session: Session, tenant: str) -> None:
    for row in VECTOR_STORES.load_all(session, _OF_TENANT_ALL, {"tenant": tenant}):
        remove(session, row)


def remove_file_everywhere(session: Session, tenant: str, file_id: str) -> int:
    """Detach an uploaded file from every store of its tenant (the file itself is being deleted)."""
    attached = files.of_upload(session, tenant, file_id)
    for row in attached:
        files.remove(session, row)
    return len(attached)


_FILES = tables.VECTOR_STORE_FILES.c
_TALLY_COLUMNS = (
    _FILES.vector_store_id,
    _FILES.status,
    func.count().label("files"),
    func.coalesce(func.sum(_FILES.usage_bytes), 0).label("used"),
)
_TALLY_ONE = statements.prepared(
    select(*_TALLY_COLUMNS)
    .where(_FILES.vector_store_id == bindparam("store_id"))
    .group_by(_FILES.vector_store_id, _FILES.status)
)


def tallies(session: Session, store_ids: Sequence[str]) -> dict[str, StoreTally]:
    """Per store: its file counts by status and the usage bytes of its files (one GROUP BY)."""
    by_status: dict[str, dict[str, int]] = {store_id: {} for store_id in store_ids}
    usage: dict[str, int] = dict.fromkeys(store_ids, 0)
    wanted = list(by_status)
    if len(wanted) == 1:
        groups = list(statements.all_rows(session, _TALLY_ONE, {"store_id": wanted[0]}))
    else:
        groups = []
        for start in range(0, len(wanted), _IN_BATCH):
            query = (
                select(*_TALLY_COLUMNS)
                .where(_FILES.vector_store_id.in_(wanted[start : start + _IN_BATCH]))
                .group_by(_FILES.vector_store_id, _FILES.status)
            )
            groups.extend(statements.all_rows(session, query, {}))
    for group in groups:
        by_status[group.vector_store_id][group.status] = int(group.files)
        usage[group.vector_store_id] += int(group.used)
    return {store_id: StoreTally(FileCounts(**by_status[store_id]), usage[store_id]) for store_id in store_ids}
