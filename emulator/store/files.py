"""Uploaded files: rows in `files` (records, `store.records`), bytes on disk under the data dir.

A file whose `expires_at` has passed is gone to every reader here, as it is to the API, until retention
deletes its row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, delete
from sqlalchemy.orm import Session

from emulator.errors import InvalidRequest, file_not_found
from emulator.store import statements
from emulator.store.pagination import Listing, Page, PageRequest
from emulator.store.records import Table
from emulator.store.rows import File
from emulator.tables import FileRow

FILES = Table(File)

_IN_BATCH = 500
"""Ids per `IN (...)` list: well under SQLite's and PostgreSQL's bound-parameter limits."""

_LIVE = FileRow.expires_at.is_(None) | (FileRow.expires_at > bindparam("now"))
_LIVE_OF_TENANT = (FileRow.tenant == bindparam("tenant"), _LIVE)
_BY_ID = statements.prepared(statements.select_columns(FileRow, *_LIVE_OF_TENANT, FileRow.id == bindparam("id")))
_AMONG = statements.select_columns(FileRow, *_LIVE_OF_TENANT, FileRow.id.in_(bindparam("ids", expanding=True)))
"""Not `prepared`: its expanding list is compiled per length, which SQLAlchemy's statement cache does."""
_DELETE = statements.prepared(delete(FileRow).where(FileRow.seq == bindparam("seq")))
_LISTED = Listing(FILES, statements.select_columns(FileRow, *_LIVE_OF_TENANT))
_LISTED_FOR_PURPOSE = Listing(
    FILES, statements.select_columns(FileRow, *_LIVE_OF_TENANT, FileRow.purpose == bindparam("purpose"))
)


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
) -> File:
    """Insert a file whose bytes are already at `storage_path`."""
    return FILES.insert(
        session,
        {
            "id": file_id,
            "tenant": tenant,
            "created_at": now,
            "bytes": size,
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
            "expires_at": expires_at,
            "storage_path": str(storage_path),
        },
    )


def get(session: Session, tenant: str, file_id: str, *, now: int) -> File:
    """The tenant's live file, or the API's 404."""
    row = FILES.load(session, _BY_ID, {"tenant": tenant, "id": file_id, "now": now})
    if row is None:
        raise file_not_found(file_id)
    return row


def live(session: Session, tenant: str, file_ids: Sequence[str], *, now: int) -> dict[str, File]:
    """The tenant's live files among `file_ids`, by id (those that do not exist are left out)."""
    wanted = list(dict.fromkeys(file_ids))
    if len(wanted) == 1:  # the usual case (an attachment), by the prepared statement
        row = FILES.load(session, _BY_ID, {"tenant": tenant, "id": wanted[0], "now": now})
        return {} if row is None else {row.id: row}
    found: dict[str, File] = {}
    for start in range(0, len(wanted), _IN_BATCH):
        params: dict[str, Any] = {"tenant": tenant, "now": now, "ids": wanted[start : start + _IN_BATCH]}
        found.update((row.id, row) for row in FILES.load_all(session, _AMONG, params))
    return found


def require_existing(
    session: Session, tenant: str, file_ids: Iterable[str], *, param: str, now: int
) -> dict[str, File]:
    """The files by id; 400 unless every id names a live file of this tenant (tool_resources, attachments)."""
    wanted = list(dict.fromkeys(file_ids))
    found = live(session, tenant, wanted, now=now) if wanted else {}
    missing = [file_id for file_id in wanted if file_id not in found]
    if missing:
        raise InvalidRequest(f"Invalid '{param}': no file found with id '{missing[0]}'.", param=param)
    return found


def remove(session: Session, row: File) -> None:
    statements.execute(session, _DELETE, {"seq": row.seq})


def list_page(session: Session, tenant: str, page: PageRequest, purpose: str | None, *, now: int) -> Page[File]:
    """Live files only: an expired file is listed no more than it can be retrieved."""
    if purpose is None:
        return _LISTED.page(session, page, {"tenant": tenant, "now": now})
    return _LISTED_FOR_PURPOSE.page(session, page, {"tenant": tenant, "now": now, "purpose": purpose})
