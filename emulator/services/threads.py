"""Threads and their retention."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Row

from emulator import sandbox
from emulator.context import Ctx
from emulator.schemas.threads import CreateThread, ModifyThread
from emulator.services import messages
from emulator.services.tool_resources import resolve_tool_resources
from emulator.store import threads as store
from emulator.store.threads import Thread


def get_live(ctx: Ctx, thread_id: str, *, lock: bool = False) -> Thread:
    row, clock_offset = store.get_with_clock(ctx.session, ctx.tenant, thread_id, lock=lock)
    if row is not None:
        ctx.clock_read(clock_offset)
    return store.require_alive(row, thread_id, alive_since=ctx.threads_alive_since)


def get_live_ref(ctx: Ctx, thread_id: str, *, lock: bool = False) -> Row[Any]:
    """`get_live` as a plain row (`id`, `last_active_at`, `active_run_id`): for requests that only check the
    thread or add to it."""
    row = store.get_ref_with_clock(ctx.session, ctx.tenant, thread_id, lock=lock)
    if row is not None:
        ctx.clock_read(row.clock_offset)
    return store.require_alive(row, thread_id, alive_since=ctx.threads_alive_since)


def create(ctx: Ctx, body: CreateThread) -> Thread:
    row = store.create(
        ctx.session,
        tenant=ctx.tenant,
        thread_id=ctx.ids.new("thread"),
        now=ctx.now,
        tool_resources=resolve_tool_resources(ctx, body.tool_resources, owner="thread"),
        metadata=body.metadata or {},
    )
    for index, message in enumerate(body.messages or []):
        messages.add(ctx, row, message, param_prefix=f"messages[{index}].")
    return row


def update(ctx: Ctx, thread_id: str, body: ModifyThread) -> Thread:
    row = get_live(ctx, thread_id, lock=True)
    changes: dict[str, object] = {}
    if "tool_resources" in body.model_fields_set:
        changes["tool_resources"] = resolve_tool_resources(ctx, body.tool_resources, owner="thread")
    if "metadata" in body.model_fields_set:
        changes["metadata_"] = body.metadata or {}
    return store.update_fields(row, ctx.now, **changes)


def delete(ctx: Ctx, thread_id: str) -> None:
    store.remove(ctx.session, get_live(ctx, thread_id, lock=True))
    ctx.after_commit(lambda: sandbox.end_session(thread_id))
