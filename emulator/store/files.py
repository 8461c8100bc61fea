"""Uploaded files: rows in `files`, bytes on disk under the data dir."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from emulator.errors import InvalidRequest, file_not_found
from emulator.store.pagination import Page, PageRequest, paginate, select_scoped
from emulator.tables import FileRow


def create(
    session: Session,
    *,
    tenant: str,
    file_id: str,
    now: int,
    size: int,
    filename: str,
    purpose: str,
    expires_at: int | None,
    storage_path: Path,
) -> FileRow:
    row = FileRow(
        id=file_id,
        tenant=tenant,
        created_at=now,
        bytes=size,
        filename=filename,
        purpose=purpose,
        status="processed",
        expires_at=expires_at,
        storage_path=str(storage_path),
    )
    session.add(row)
    session.flush()
    return row


def get(session: Session, tenant: str, file_id: str, *, now: int) -> FileRow:
    row = session.scalar(select_scoped(FileRow, FileRow.tenant == tenant, FileRow.id == file_id))
    if row is None or (row.expires_at is not None and row.expires_at <= now):
        raise file_not_found(file_id)
    return row


def require_existing(session: Session, tenant: str, file_ids: Iterable[str], *, param: str, now: int) -> None:
    """400 unless every id names a live file of this tenant (used by tool_resources and attachments)."""
    wanted = list(dict.fromkeys(file_ids))
    if not wanted:
        return
    found = set(
        session.scalars(
            select(FileRow.id).where(
                FileRow.tenant == tenant,
                FileRow.id.in_(wanted),
                _live(now),
            )
        )
    )
    missing = [file_id for file_id in wanted if file_id not in found]
    if missing:
        raise InvalidRequest(f"Invalid '{param}': no file found with id '{missing[0]}'.", param=param)


def _live(now: int) -> Any:
    return FileRow.expires_at.is_(None) | (FileRow.expires_at > now)


def remove(session: Session, row: FileRow) -> None:
    session.execute(delete(FileRow).where(FileRow.seq == row.seq))


def list_page(session: Session, tenant: str, page: PageRequest, purpose: str | None, *, now: int) -> Page[FileRow]:
    """Live files only: an expired file is listed no more than it can be retrieved."""
    conditions = [FileRow.tenant == tenant, _live(now)]
    if purpose is not None:
        conditions.append(FileRow.purpose == purpose)
    return paginate(session, FileRow, select_scoped(FileRow, *conditions), page)
