"""Runs, as the routes ask for them: the thread and assistant found and the checks outside the run slice made
(the model, the vector stores), then the run's lifecycle (`runs.lifecycle`).

Importing this module connects the run slice to the vector store and file services (`runs.backends`)."""

from __future__ import annotations

from emulator.context import Ctx
from emulator.runs import backends, events, lifecycle
from emulator.runs.events import Event
from emulator.runs.lifecycle import observe_active, parse_include, release_expired_holder
from emulator.schemas.runs import CreateRun, CreateThreadAndRun, RunOptions, SubmitToolOutputs
from emulator.schemas.threads import CreateThread
from emulator.services import files, messages, threads, vector_stores
from emulator.services.assistants import require_known_model
from emulator.store import assistants
from emulator.store import threads as thread_store
from emulator.store.rows import Assistant, Run, Thread

__all__ = [
    "cancel", "create", "create_thread_and_run", "observe_active", "observed", "parse_include",
    "release_expired_holder", "submit_tool_outputs",
]

backends.connect(vector_stores=vector_stores, files=files)


def _new_run(
    ctx: Ctx, thread: Thread, assistant: Assistant, body: RunOptions, instructions: str, *, stream: bool
) -> Run:
    if body.model is not None:
        require_known_model(ctx, body.model)
    tools = lifecycle.tools_of(body, assistant)
    if tools.searches_files:
        for owner in (thread, assistant):  # an expired store cannot be used by a run (400), whoever's it is
            ids = (owner.tool_resources.get("file_search") or {}).get("vector_store_ids", [])
            vector_stores.require_usable(ctx, ids, "tool_resources.file_search.vector_store_ids")
    return lifecycle.create(ctx, thread, assistant, body, tools, instructions, stream=stream)


def create(ctx: Ctx, thread_id: str, body: CreateRun, *, stream: bool) -> tuple[Run, list[Event]]:
    thread = threads.get_live(ctx, thread_id, lock=True)
    assistant = assistants.get(ctx.session, ctx.tenant, body.assistant_id)
    for index, message in enumerate(body.additional_messages or []):
        messages.add(ctx, thread, message, param_prefix=f"additional_messages[{index}].")
    instructions = lifecycle.instructions(assistant, body, body.additional_instructions)
    run = _new_run(ctx, thread, assistant, body, instructions, stream=stream)
    thread_store.touch(thread, ctx.now)
    return run, lifecycle.opening_events(run)


def create_thread_and_run(ctx: Ctx, body: CreateThreadAndRun, *, stream: bool) -> tuple[Run, list[Event]]:
    assistant = assistants.get(ctx.session, ctx.tenant, body.assistant_id)
    thread_body = body.thread or CreateThread()
    if body.tool_resources is not None and thread_body.tool_resources is None:
        thread_body = thread_body.model_copy(update={"tool_resources": body.tool_resources})
    thread = threads.create(ctx, thread_body)
    run = _new_run(ctx, thread, assistant, body, lifecycle.instructions(assistant, body, None), stream=stream)
    return run, [events.thread_created(thread), *lifecycle.opening_events(run)]


def observed(ctx: Ctx, thread_id: str, run_id: str) -> Run:
    """The run as a client sees it now: expiry applied and progressed per the policy."""
    threads.get_live(ctx, thread_id, lock=True)
    return lifecycle.observed(ctx, thread_id, run_id)


def cancel(ctx: Ctx, thread_id: str, run_id: str) -> Run:
    threads.get_live(ctx, thread_id, lock=True)
    return lifecycle.cancel(ctx, thread_id, run_id)


def submit_tool_outputs(
    ctx: Ctx, thread_id: str, run_id: str, body: SubmitToolOutputs, *, stream: bool
) -> tuple[Run, list[Event]]:
    thread = threads.get_live(ctx, thread_id, lock=True)
    run, produced = lifecycle.submit_tool_outputs(ctx, thread_id, run_id, body, stream=stream)
    thread_store.touch(thread, ctx.now)
    return run, produced
