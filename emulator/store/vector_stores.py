"""Vector stores, their files and file batches: the only SQL over those three tables.

File counts and usage are aggregates over `vector_store_files` (one GROUP BY), so they are exact by
construction: the SDK's batch poller loops while `file_counts.in_progress > 0`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from emulator.errors import NotFound
from emulator.schemas.vector_stores import FileCounts
from emulator.store import vector_store_index as index
from emulator.store.pagination import Page, PageRequest, paginate, select_scoped
from emulator.tables import FileRow, VectorStoreFileBatchRow, VectorStoreFileRow, VectorStoreRow

# ------------------------------------------------------------------------------------------------------ stores


def create_store(session: Session, **fields: Any) -> VectorStoreRow:
    row = VectorStoreRow(**fields)
    session.add(row)
    session.flush()
    return row


def get_store(session: Session, tenant: str, store_id: str, *, lock: bool = False) -> VectorStoreRow:
    query = select_scoped(VectorStoreRow, VectorStoreRow.tenant == tenant, VectorStoreRow.id == store_id)
    row = session.scalar(query.with_for_update() if lock else query)
    if row is None:
        raise NotFound.object("vector store", store_id)
    return row


def find_stores(session: Session, tenant: str, store_ids: Sequence[str]) -> dict[str, VectorStoreRow]:
    rows = session.scalars(
        select_scoped(VectorStoreRow, VectorStoreRow.tenant == tenant, VectorStoreRow.id.in_(list(store_ids)))
    )
    return {row.id: row for row in rows}


def list_stores(session: Session, tenant: str, page: PageRequest) -> Page[VectorStoreRow]:
    return paginate(session, VectorStoreRow, select_scoped(VectorStoreRow, VectorStoreRow.tenant == tenant), page)


def remove_store(session: Session, row: VectorStoreRow) -> None:
    index.remove_store(session, row.seq)
    session.execute(delete(VectorStoreFileRow).where(VectorStoreFileRow.vector_store_id == row.id))
    session.execute(delete(VectorStoreFileBatchRow).where(VectorStoreFileBatchRow.vector_store_id == row.id))
    session.execute(delete(VectorStoreRow).where(VectorStoreRow.seq == row.seq))


def remove_tenant(session: Session, tenant: str) -> None:
    for row in session.scalars(select(VectorStoreRow).where(VectorStoreRow.tenant == tenant)):
        remove_store(session, row)


def counts_and_usage(session: Session, store_ids: Sequence[str]) -> dict[str, tuple[FileCounts, int]]:
    """Per store: its file counts by status and the usage bytes of its files."""
    tallies: dict[str, dict[str, int]] = {store_id: {} for store_id in store_ids}
    usage: dict[str, int] = dict.fromkeys(store_ids, 0)
    if store_ids:
        rows = session.execute(
            select(
                VectorStoreFileRow.vector_store_id,
                VectorStoreFileRow.status,
                func.count(),
                func.coalesce(func.sum(VectorStoreFileRow.usage_bytes), 0),
            )
            .where(VectorStoreFileRow.vector_store_id.in_(list(store_ids)))
            .group_by(VectorStoreFileRow.vector_store_id, VectorStoreFileRow.status)
        )
        for store_id, status, count, used in rows:
            tallies[store_id][status] = int(count)
            usage[store_id] += int(used)
    return {store_id: (FileCounts(**tallies[store_id]), usage[store_id]) for store_id in store_ids}


def tenant_usage_bytes(session: Session, tenant: str) -> int:
    return int(
        session.scalar(
            select(func.coalesce(func.sum(VectorStoreFileRow.usage_bytes), 0)).where(
                VectorStoreFileRow.tenant == tenant
            )
        )
        or 0
    )


# ------------------------------------------------------------------------------------------------------- files


def live_files(session: Session, tenant: str, file_ids: Sequence[str], *, now: int) -> dict[str, FileRow]:
    """The tenant's uploaded files (not expired) among `file_ids`, by id."""
    wanted = list(dict.fromkeys(file_ids))
    found: dict[str, FileRow] = {}
    for start in range(0, len(wanted), 500):
        rows = session.scalars(
            select(FileRow).where(
                FileRow.tenant == tenant,
                FileRow.id.in_(wanted[start : start + 500]),
                FileRow.expires_at.is_(None) | (FileRow.expires_at > now),
            )
        )
        found.update({row.id: row for row in rows})
    return found


def find_file(session: Session, store_id: str, file_id: str) -> VectorStoreFileRow | None:
    return session.scalar(
        select(VectorStoreFileRow).where(
            VectorStoreFileRow.vector_store_id == store_id, VectorStoreFileRow.id == file_id
        )
    )


def get_file(session: Session, store_id: str, file_id: str, *, lock: bool = False) -> VectorStoreFileRow:
    query = select(VectorStoreFileRow).where(
        VectorStoreFileRow.vector_store_id == store_id, VectorStoreFileRow.id == file_id
    )
    row = session.scalar(query.with_for_update() if lock else query)
    if row is None:
        raise NotFound.object("vector store file", file_id)
    return row


def add_file(session: Session, **fields: Any) -> VectorStoreFileRow:
    row = VectorStoreFileRow(**fields)
    session.add(row)
    session.flush()
    return row


def count_files(session: Session, store_id: str) -> int:
    return int(session.scalar(select(func.count()).where(VectorStoreFileRow.vector_store_id == store_id)) or 0)


def count_attached(session: Session, store_id: str, file_ids: Sequence[str]) -> int:
    """How many of `file_ids` are already attached to the store."""
    wanted = list(dict.fromkeys(file_ids))
    total = 0
    for start in range(0, len(wanted), 500):
        total += int(
            session.scalar(
                select(func.count()).where(
                    VectorStoreFileRow.vector_store_id == store_id,
                    VectorStoreFileRow.id.in_(wanted[start : start + 500]),
                )
            )
            or 0
        )
    return total


def remove_file(session: Session, row: VectorStoreFileRow) -> None:
    index.remove_files(session, [row.seq])
    session.execute(delete(VectorStoreFileRow).where(VectorStoreFileRow.seq == row.seq))


def remove_file_everywhere(session: Session, tenant: str, file_id: str) -> int:
    """Detach an uploaded file from every store of its tenant (the file itself is being deleted)."""
    rows = list(
        session.scalars(
            select(VectorStoreFileRow).where(VectorStoreFileRow.tenant == tenant, VectorStoreFileRow.id == file_id)
        )
    )
    for row in rows:
        remove_file(session, row)
    return len(rows)


def in_progress_files(
    session: Session, *, store_id: str, batch_id: str | None = None, file_id: str | None = None
) -> list[VectorStoreFileRow]:
    """The store's in-progress files (of one batch, or one file), locked for this transaction."""
    query = select(VectorStoreFileRow).where(
        VectorStoreFileRow.vector_store_id == store_id, VectorStoreFileRow.status == "in_progress"
    )
    if batch_id is not None:
        query = query.where(VectorStoreFileRow.batch_id == batch_id)
    if file_id is not None:
        query = query.where(VectorStoreFileRow.id == file_id)
    return list(session.scalars(query.order_by(VectorStoreFileRow.seq).with_for_update()))


def list_files(
    session: Session, store_id: str, page: PageRequest, *, status: str | None = None, batch_id: str | None = None
) -> Page[VectorStoreFileRow]:
    conditions = [VectorStoreFileRow.vector_store_id == store_id]
    if status is not None:
        conditions.append(VectorStoreFileRow.status == status)
    if batch_id is not None:
        conditions.append(VectorStoreFileRow.batch_id == batch_id)
    return paginate(session, VectorStoreFileRow, select_scoped(VectorStoreFileRow, *conditions), page)


def file_content(session: Session, row: VectorStoreFileRow) -> str:
    return session.scalar(select(VectorStoreFileRow.content).where(VectorStoreFileRow.seq == row.seq)) or ""


# ----------------------------------------------------------------------------------------------------- batches


def create_batch(session: Session, **fields: Any) -> VectorStoreFileBatchRow:
    row = VectorStoreFileBatchRow(**fields)
    session.add(row)
    session.flush()
    return row


def get_batch(session: Session, store_id: str, batch_id: str, *, lock: bool = False) -> VectorStoreFileBatchRow:
    query = select(VectorStoreFileBatchRow).where(
        VectorStoreFileBatchRow.vector_store_id == store_id, VectorStoreFileBatchRow.id == batch_id
    )
    row = session.scalar(query.with_for_update() if lock else query)
    if row is None:
        raise NotFound.object("vector store file batch", batch_id)
    return row


def batch_counts(session: Session, batch_id: str) -> FileCounts:
    rows = session.execute(
        select(VectorStoreFileRow.status, func.count())
        .where(VectorStoreFileRow.batch_id == batch_id)
        .group_by(VectorStoreFileRow.status)
    )
    return FileCounts(**{status: int(count) for status, count in rows})
