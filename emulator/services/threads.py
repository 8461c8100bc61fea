"""Threads and their retention."""

from __future__ import annotations

from emulator import sandbox
from emulator.context import Ctx
from emulator.schemas.threads import CreateThread, ModifyThread
from emulator.services import messages
from emulator.services.tool_resources import resolve_tool_resources
from emulator.store import threads as store
from emulator.store.rows import Thread


def get_live(ctx: Ctx, thread_id: str, *, lock: bool = False) -> Thread:
    """The tenant's thread, unless retention has removed it (404); the request's clock is read with it.

    `lock`: for a request that adds to the thread or checks its active run (`store.threads.get_with_clock`).
    """
    thread, clock_offset = store.get_with_clock(ctx.session, ctx.tenant, thread_id, lock=lock)
    if thread is not None:
        ctx.clock_read(clock_offset)
    return store.require_alive(thread, thread_id, alive_since=ctx.threads_alive_since)


def create(ctx: Ctx, body: CreateThread) -> Thread:
    thread = store.create(
        ctx.session,
        tenant=ctx.tenant,
        thread_id=ctx.ids.new("thread"),
        now=ctx.now,
        tool_resources=resolve_tool_resources(ctx, body.tool_resources, owner="thread"),
        metadata=body.metadata or {},
    )
    for index, message in enumerate(body.messages or []):
        messages.add(ctx, thread, message, param_prefix=f"messages[{index}].")
    return thread


def update(ctx: Ctx, thread_id: str, body: ModifyThread) -> Thread:
    thread = get_live(ctx, thread_id, lock=True)
    changes: dict[str, object] = {}
    if "tool_resources" in body.model_fields_set:
        changes["tool_resources"] = resolve_tool_resources(ctx, body.tool_resources, owner="thread")
    if "metadata" in body.model_fields_set:
        changes["metadata_"] = body.metadata or {}
    return store.update_fields(thread, ctx.now, **changes)


def delete(ctx: Ctx, thread_id: str) -> None:
    store.remove(ctx.session, get_live(ctx, thread_id, lock=True))
    ctx.after_commit(lambda: sandbox.end_session(thread_id))
