"""Messages: a thread takes no new message while one of its runs is active; files attached for file_search join
the thread's vector store (`vector_store_attachments`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Row

from emulator.context import Ctx
from emulator.errors import InvalidRequest
from emulator.schemas.messages import CreateMessage, ModifyMessage
from emulator.services import vector_store_attachments
from emulator.store import files, threads
from emulator.store import messages as store
from emulator.store.messages import Message
from emulator.store.threads import Thread


def add(ctx: Ctx, thread: Thread | Row[Any], body: CreateMessage, *, param_prefix: str = "") -> Message:
    for file_ids, param in (
        (body.attachment_file_ids(), f"{param_prefix}attachments"),
        (body.image_file_ids(), f"{param_prefix}content"),
    ):
        files.require_existing(ctx.session, ctx.tenant, file_ids, param=param, now=ctx.now)
    vector_store_attachments.add_from_message(ctx, thread.id, body, f"{param_prefix}attachments")
    row = store.create(
        ctx.session,
        tenant=ctx.tenant,
        message_id=ctx.ids.new("message"),
        thread_id=thread.id,
        now=ctx.now,
        role=body.role,
        content=body.content_parts(),
        attachments=[attachment.model_dump() for attachment in body.attachments or []],
        metadata=body.metadata or {},
    )
    threads.touch_by_id(ctx.session, thread.id, thread.last_active_at, ctx.now)
    return row


def create(ctx: Ctx, thread: Thread | Row[Any], body: CreateMessage) -> Message:
    if thread.active_run_id is not None:
        raise InvalidRequest(f"Can't add messages to {thread.id} while a run {thread.active_run_id} is active.")
    return add(ctx, thread, body)


def update(ctx: Ctx, thread_id: str, message_id: str, body: ModifyMessage) -> Message:
    row = store.get(ctx.session, ctx.tenant, thread_id, message_id)
    if "metadata" in body.model_fields_set:
        row.metadata_ = body.metadata or {}
    return row
