"""Messages: a thread takes no new message while one of its runs is active; files attached for file_search join
the thread's vector store (`vector_store_attachments`)."""

from __future__ import annotations

from emulator.context import Ctx
from emulator.errors import InvalidRequest
from emulator.runs.lifecycle import release_expired_holder
from emulator.schemas.messages import CreateMessage, ModifyMessage
from emulator.services import threads, vector_store_attachments
from emulator.store import files
from emulator.store import messages as store
from emulator.store import threads as thread_store
from emulator.store.pagination import Page, PageRequest
from emulator.store.rows import Message, Thread


def add(ctx: Ctx, thread: Thread, body: CreateMessage, *, param_prefix: str = "") -> Message:
    """Add a message to a thread the caller has checked (a new thread's, or a run's `additional_messages`)."""
    for file_ids, param in (
        (body.attachment_file_ids(), f"{param_prefix}attachments"),
        (body.image_file_ids(), f"{param_prefix}content"),
    ):
        files.require_existing(ctx.session, ctx.tenant, file_ids, param=param, now=ctx.now)
    vector_store_attachments.add_from_message(ctx, thread.id, body, f"{param_prefix}attachments")
    message = store.create(
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
    thread_store.touch(thread, ctx.now)
    return message


def create(ctx: Ctx, thread_id: str, body: CreateMessage) -> Message:
    thread = threads.get_live(ctx, thread_id, lock=True)
    release_expired_holder(ctx, thread)
    if thread.active_run_id is not None:
        raise InvalidRequest(f"Can't add messages to {thread.id} while a run {thread.active_run_id} is active.")
    return add(ctx, thread, body)


def list_page(ctx: Ctx, thread_id: str, page: PageRequest, run_id: str | None = None) -> Page[Message]:
    threads.get_live(ctx, thread_id)
    return store.list_page(ctx.session, thread_id, page, run_id=run_id)


def get(ctx: Ctx, thread_id: str, message_id: str) -> Message:
    threads.get_live(ctx, thread_id)
    return store.get(ctx.session, ctx.tenant, thread_id, message_id)


def update(ctx: Ctx, thread_id: str, message_id: str, body: ModifyMessage) -> Message:
    threads.get_live(ctx, thread_id)
    message = store.get(ctx.session, ctx.tenant, thread_id, message_id)
    if "metadata" in body.model_fields_set:
        message.metadata_ = body.metadata or {}
    return message


def delete(ctx: Ctx, thread_id: str, message_id: str) -> None:
    threads.get_live(ctx, thread_id)
    store.remove(ctx.session, ctx.tenant, thread_id, message_id)
