"""Files: uploads land on disk under the data dir, their rows in the database."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from emulator import limits
from emulator.context import Ctx
from emulator.errors import InvalidRequest
from emulator.store import files as store
from emulator.store import vector_stores as vector_store_store
from emulator.store.pagination import Page, PageRequest
from emulator.store.rows import File
from emulator.uploads import Upload

_EXPIRES_MIN_SECONDS = 3_600
_EXPIRES_MAX_SECONDS = 2_592_000


def storage_path(files_dir: Path, file_id: str) -> Path:
    return files_dir / file_id


def _expires_at(ctx: Ctx, fields: dict[str, str]) -> int | None:
    anchor = fields.get("expires_after[anchor]")
    seconds = fields.get("expires_after[seconds]")
    if anchor is None and seconds is None:
        return None
    if anchor != "created_at":
        raise InvalidRequest(
            "Invalid 'expires_after.anchor': expected 'created_at'.",
            param="expires_after.anchor",
            code="invalid_value",
        )
    try:
        value = int(seconds or "")
    except ValueError:
        raise InvalidRequest(
            "Invalid type for 'expires_after.seconds': expected an integer.",
            param="expires_after.seconds",
            code="invalid_type",
        ) from None
    if not _EXPIRES_MIN_SECONDS <= value <= _EXPIRES_MAX_SECONDS:
        raise InvalidRequest(
            f"Invalid 'expires_after.seconds': expected a value between {_EXPIRES_MIN_SECONDS} and "
            f"{_EXPIRES_MAX_SECONDS}, but got {value} instead.",
            param="expires_after.seconds",
            code="invalid_value",
        )
    return ctx.now + value


def _check_form(upload: Upload) -> str:
    known = {"file", "purpose", "expires_after[anchor]", "expires_after[seconds]"}
    for name in upload.fields:
        if name not in known:
            raise InvalidRequest(f"Unrecognized request argument supplied: {name}")
    if upload.path is None:
        raise InvalidRequest(
            "Missing required parameter: 'file'.", param="file", code="missing_required_parameter"
        )
    purpose = upload.fields.get("purpose")
    if purpose is None:
        raise InvalidRequest(
            "Missing required parameter: 'purpose'.", param="purpose", code="missing_required_parameter"
        )
    if purpose not in limits.FILE_UPLOAD_PURPOSES:
        supported = ", ".join(f"'{name}'" for name in limits.FILE_UPLOAD_PURPOSES)
        raise InvalidRequest(
            f"Invalid value: '{purpose}'. Supported values are: {supported}.",
            param="purpose",
            code="invalid_value",
        )
    return purpose


def register(ctx: Ctx, file_id: str, upload: Upload) -> File:
    """Record an upload already on disk at its final path (the caller removes it if the request fails)."""
    purpose = _check_form(upload)
    expires_at = _expires_at(ctx, upload.fields)
    assert upload.path is not None
    return store.create(
        ctx.session,
        tenant=ctx.tenant,
        file_id=file_id,
        now=ctx.now,
        size=upload.size,
        filename=upload.filename or "upload",
        purpose=purpose,
        expires_at=expires_at,
        storage_path=upload.path,
    )


def discard(path: Path | None) -> None:
    if path is not None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def get(ctx: Ctx, file_id: str) -> File:
    return store.get(ctx.session, ctx.tenant, file_id, now=ctx.now)


def list_page(ctx: Ctx, page: PageRequest, purpose: str | None) -> Page[File]:
    return store.list_page(ctx.session, ctx.tenant, page, purpose, now=ctx.now)


def delete(ctx: Ctx, file_id: str) -> Path:
    """Delete the file and remove it from all vector stores (as the API reference says); the caller removes the
    bytes once the transaction has committed."""
    row = get(ctx, file_id)
    vector_store_store.remove_file_everywhere(ctx.session, ctx.tenant, file_id)
    store.remove(ctx.session, row)
    return Path(row.storage_path)
