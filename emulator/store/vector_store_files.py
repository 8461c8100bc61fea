"""The files of vector stores and their file batches: the only SQL over `vector_store_files` and
`vector_store_file_batches` (but the deletes of a whole store, `store.vector_stores`).

A file's parsed text (`content`, a deferred column) is not part of its record: it is written when the file is
ingested and read only for `GET .../files/{id}/content`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, bindparam, delete, func, select, update
from sqlalchemy.orm import Session

from emulator.errors import NotFound
from emulator.store import statements
from emulator.store import vector_store_index as index
from emulator.store import vector_store_tables as tables
from emulator.store.pagination import Listing, Page, PageRequest
from emulator.store.records import Table
from emulator.store.rows import File, VectorStoreFile, VectorStoreFileBatch
from emulator.tables import VectorStoreFileBatchRow, VectorStoreFileRow

FILES = Table(VectorStoreFile)
BATCHES = Table(VectorStoreFileBatch)

_IN_BATCH = 500
"""Ids per `IN (...)` list: well under SQLite's and PostgreSQL's bound-parameter limits."""

_C = tables.VECTOR_STORE_FILES.c


@dataclass(frozen=True)
class FileCounts:
    """A store's (or a batch's) files by status."""

    in_progress: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0

    @property
    def total(self) -> int:
        return self.in_progress + self.completed + self.failed + self.cancelled


# -------------------------------------------------------------------------------------------------- the files


def add(
    session: Session,
    *,
    tenant: str,
    store_id: str,
    store_seq: int,
    upload: File,
    now: int,
    chunking_strategy: dict[str, int],
    attributes: dict[str, Any],
    batch_id: str | None,
) -> VectorStoreFile:
    """Attach an uploaded file to a store: it starts `in_progress`, unobserved, with nothing indexed."""
    return FILES.insert(
        session,
        {
            "id": upload.id,
            "tenant": tenant,
            "vector_store_id": store_id,
            "store_seq": store_seq,
            "batch_id": batch_id,
            "created_at": now,
            "status": "in_progress",
            "last_error": None,
            "chunking_strategy": chunking_strategy,
            "attributes": attributes,
            "filename": upload.filename,
            "usage_bytes": 0,
            "chunk_count": 0,
            "term_count": 0,
            "observations": 0,
        },
    )


_BY_ID = statements.prepared(
    statements.select_columns(
        VectorStoreFileRow, _C.vector_store_id == bindparam("store_id"), _C.id == bindparam("file_id")
    )
)
_BY_ID_LOCKED = statements.prepared(_BY_ID.with_for_update())


def find(session: Session, store_id: str, file_id: str, *, lock: bool = False) -> VectorStoreFile | None:
    """The store's file of that id, if attached; `lock` takes its row lock (PostgreSQL) before it is deleted."""
    return FILES.load(session, _BY_ID_LOCKED if lock else _BY_ID, {"store_id": store_id, "file_id": file_id})


def get(session: Session, store_id: str, file_id: str, *, lock: bool = False) -> VectorStoreFile:
    """`find`, or 404."""
    row = find(session, store_id, file_id, lock=lock)
    if row is None:
        raise NotFound.object("vector store file", file_id)
    return row


_OF_UPLOAD = statements.prepared(
    statements.select_columns(VectorStoreFileRow, _C.tenant == bindparam("tenant"), _C.id == bindparam("file_id"))
)


def of_upload(session: Session, tenant: str, file_id: str) -> list[VectorStoreFile]:
    """Every store's file made from this upload."""
    return FILES.load_all(session, _OF_UPLOAD, {"tenant": tenant, "file_id": file_id})


_COUNT = statements.prepared(select(func.count().label("files")).where(_C.vector_store_id == bindparam("store_id")))


def count(session: Session, store_id: str) -> int:
    return int(statements.scalar(session, _COUNT, {"store_id": store_id}) or 0)


def count_attached(session: Session, store_id: str, file_ids: Sequence[str]) -> int:
    """How many of `file_ids` are already attached to the store."""
    wanted = list(dict.fromkeys(file_ids))
    total = 0
    for start in range(0, len(wanted), _IN_BATCH):
        query = select(func.count().label("files")).where(
            _C.vector_store_id == store_id, _C.id.in_(wanted[start : start + _IN_BATCH])
        )
        total += int(statements.scalar(session, query, {}) or 0)
    return total


_DELETE = statements.prepared(delete(tables.VECTOR_STORE_FILES).where(_C.seq == bindparam("file_seq")))


def remove(session: Session, row: VectorStoreFile) -> None:
    """Detach the file from its store: its chunks and index entries go with it."""
    index.remove_file(session, row.seq)
    statements.execute(session, _DELETE, {"file_seq": row.seq})


def _in_progress(batch: bool, file: bool) -> Select[Any]:
    conditions = [_C.vector_store_id == bindparam("store_id"), _C.status == "in_progress"]
    if batch:
        conditions.append(_C.batch_id == bindparam("batch_id"))
    if file:
        conditions.append(_C.id == bindparam("file_id"))
    query = statements.select_columns(VectorStoreFileRow, *conditions).order_by(_C.seq).with_for_update()
    return statements.prepared(query)


_IN_PROGRESS = {(batch, file): _in_progress(batch, file) for batch in (False, True) for file in (False, True)}


def in_progress(
    session: Session, *, store_id: str, batch_id: str | None = None, file_id: str | None = None
) -> list[VectorStoreFile]:
    """The store's in-progress files (of one batch, or one file), locked for this transaction."""
    query = _IN_PROGRESS[batch_id is not None, file_id is not None]
    return FILES.load_all(session, query, {"store_id": store_id, "batch_id": batch_id, "file_id": file_id})


def _listing(status: bool, batch: bool) -> Listing[VectorStoreFile]:
    conditions = [_C.vector_store_id == bindparam("store_id")]
    if status:
        conditions.append(_C.status == bindparam("status"))
    if batch:
        conditions.append(_C.batch_id == bindparam("batch_id"))
    return Listing(FILES, statements.select_columns(VectorStoreFileRow, *conditions))


_LISTINGS = {(status, batch): _listing(status, batch) for status in (False, True) for batch in (False, True)}


def list_page(
    session: Session, store_id: str, page: PageRequest, *, status: str | None = None, batch_id: str | None = None
) -> Page[VectorStoreFile]:
    params: dict[str, Any] = {"store_id": store_id}
    if status is not None:
        params["status"] = status
    if batch_id is not None:
        params["batch_id"] = batch_id
    return _LISTINGS[status is not None, batch_id is not None].page(session, page, params)


_CONTENT = statements.prepared(select(_C.content).where(_C.seq == bindparam("file_seq")))
_SET_CONTENT = statements.prepared(
    update(tables.VECTOR_STORE_FILES).where(_C.seq == bindparam("file_seq")).values(content=bindparam("content"))
)


def content(session: Session, row: VectorStoreFile) -> str:
    """The file's parsed text (empty until it is ingested)."""
    return statements.scalar(session, _CONTENT, {"file_seq": row.seq}) or ""


def set_content(session: Session, row: VectorStoreFile, text: str) -> None:
    statements.execute(session, _SET_CONTENT, {"file_seq": row.seq, "content": text})


# ------------------------------------------------------------------------------------------------ the batches


def add_batch(session: Session, *, batch_id: str, tenant: str, store_id: str, now: int) -> VectorStoreFileBatch:
    return BATCHES.insert(
        session,
        {"id": batch_id, "tenant": tenant, "vector_store_id": store_id, "created_at": now, "cancelled_at": None},
    )


_BATCH_C = tables.VECTOR_STORE_FILE_BATCHES.c
_BATCH_BY_ID = statements.prepared(
    statements.select_columns(
        VectorStoreFileBatchRow,
        _BATCH_C.vector_store_id == bindparam("store_id"),
        _BATCH_C.id == bindparam("batch_id"),
    )
)
_BATCH_BY_ID_LOCKED = statements.prepared(_BATCH_BY_ID.with_for_update())


def get_batch(session: Session, store_id: str, batch_id: str, *, lock: bool = False) -> VectorStoreFileBatch:
    query = _BATCH_BY_ID_LOCKED if lock else _BATCH_BY_ID
    row = BATCHES.load(session, query, {"store_id": store_id, "batch_id": batch_id})
    if row is None:
        raise NotFound.object("vector store file batch", batch_id)
    return row


_BATCH_TALLY = statements.prepared(
    select(_C.status, func.count().label("files"))
    .where(_C.batch_id == bindparam("batch_id"))
    .group_by(_C.status)
)


def batch_counts(session: Session, batch_id: str) -> FileCounts:
    """The files a batch attached (those re-attached since by another request count there), by status."""
    rows = statements.all_rows(session, _BATCH_TALLY, {"batch_id": batch_id})
    return FileCounts(**{row.status: int(row.files) for row in rows})
