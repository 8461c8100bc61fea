"""`/v1/files` (no beta header: the SDKs do not send it here)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from starlette.background import BackgroundTask
from starlette.responses import FileResponse

from emulator import limits
from emulator.api.deps import Order, ReadCtx, WorkerThreadRoute, WriteCtx, runtime, tenant, without_unit_of_work
from emulator.api.responses import OpenAIJSON, ok
from emulator.context import Ctx
from emulator.errors import PayloadTooLarge
from emulator.schemas.common import render_list
from emulator.schemas.files import render_file
from emulator.services import files as service
from emulator.store import files as store
from emulator.store.pagination import PageRequest
from emulator.uploads import receive_upload

router = APIRouter(prefix="/v1/files", route_class=WorkerThreadRoute)


@router.post("")
@without_unit_of_work  # the upload is streamed to disk first, then registered in a transaction of its own
async def create_file(request: Request, tenant_id: Annotated[str, Depends(tenant)]) -> OpenAIJSON:
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

    def register() -> dict[str, object]:
        try:
            with rt.db.transaction() as session:
                ctx = Ctx(session=session, tenant=tenant_id, settings=rt.settings, ids=rt.ids)
                return render_file(service.register(ctx, file_id, upload))
        except BaseException:
            service.discard(upload.path)
            raise

    return ok(await run_in_threadpool(register))


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
    return ok(render_list(store.list_page(ctx.session, ctx.tenant, page, purpose, now=ctx.now), render_file))


@router.get("/{file_id}")
def retrieve_file(file_id: str, ctx: ReadCtx) -> OpenAIJSON:
    return ok(render_file(store.get(ctx.session, ctx.tenant, file_id, now=ctx.now)))


@router.get("/{file_id}/content")
def retrieve_file_content(file_id: str, ctx: ReadCtx) -> FileResponse:
    row = store.get(ctx.session, ctx.tenant, file_id, now=ctx.now)
    return FileResponse(row.storage_path, media_type="application/octet-stream")


@router.delete("/{file_id}")
def delete_file(file_id: str, ctx: WriteCtx) -> OpenAIJSON:
    path = service.delete(ctx, file_id)
    return ok({"id": file_id, "object": "file", "deleted": True}, background=BackgroundTask(service.discard, path))
