"""`/v1/files` (no beta header: the SDKs do not send it here)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.background import BackgroundTask
from starlette.responses import FileResponse

from emulator import limits
from emulator.api.deps import Order, ReadCtx, WorkerThreadRoute, WriteCtx, runtime, tenant
from emulator.api.responses import OpenAIJSON, ok
from emulator.errors import PayloadTooLarge
from emulator.schemas.common import render_list
from emulator.schemas.files import render_file
from emulator.services import files as service
from emulator.store.pagination import PageRequest
from emulator.uploads import Upload, receive_upload

router = APIRouter(prefix="/v1/files", route_class=WorkerThreadRoute)


@dataclass(frozen=True)
class ReceivedFile:
    file_id: str
    upload: Upload


async def received_file(request: Request, _tenant: Annotated[str, Depends(tenant)]) -> ReceivedFile:
    """The upload, on disk at its final path before the unit of work opens (the caller's key checked first, so
    a refused key uploads nothing); the endpoint has its bytes removed if its unit of work fails."""
    rt = runtime(request)
    max_bytes = rt.settings.max_file_bytes
    declared = int(request.headers.get("content-length") or 0)
    if declared > max_bytes + 1024 * 1024:
        raise PayloadTooLarge(
            f"File is too large: the maximum size is {max_bytes} bytes.", param="file", code="file_too_large"
        )
    file_id = rt.ids.new("file")
    path = service.storage_path(rt.settings.files_dir, file_id)
    upload = await receive_upload(request.headers.get("content-type"), request.stream(), path, max_bytes)
    return ReceivedFile(file_id, upload)


@router.post("")
def create_file(received: Annotated[ReceivedFile, Depends(received_file)], ctx: WriteCtx) -> OpenAIJSON:
    ctx.after_rollback(functools.partial(service.discard, received.upload.path))
    return ok(render_file(service.register(ctx, received.file_id, received.upload)))


@router.get("")
def list_files(
    ctx: ReadCtx,
    purpose: str | None = None,
    limit: Annotated[
        int, Query(ge=limits.LIST_LIMIT_MIN, le=limits.FILES_LIST_LIMIT_MAX)
    ] = limits.FILES_LIST_LIMIT_DEFAULT,
    order: Order = "desc",
    after: str | None = None,
) -> OpenAIJSON:
    page = PageRequest(limit=limit, order=order, after=after)
    return ok(render_list(service.list_page(ctx, page, purpose), render_file))


@router.get("/{file_id}")
def retrieve_file(file_id: str, ctx: ReadCtx) -> OpenAIJSON:
    return ok(render_file(service.get(ctx, file_id)))


@router.get("/{file_id}/content")
def retrieve_file_content(file_id: str, ctx: ReadCtx) -> FileResponse:
    row = service.get(ctx, file_id)
    return FileResponse(row.storage_path, media_type="application/octet-stream")


@router.delete("/{file_id}")
def delete_file(file_id: str, ctx: WriteCtx) -> OpenAIJSON:
    path = service.delete(ctx, file_id)
    return ok({"id": file_id, "object": "file", "deleted": True}, background=BackgroundTask(service.discard, path))
