"""Runs: creation (with the one-active-run claim), observation, cancel and tool outputs."""

from __future__ import annotations

import functools
import logging
from typing import Any

from sqlalchemy.engine import Row

from emulator import limits, logs
from emulator.context import Ctx
from emulator.errors import InvalidRequest
from emulator.runs import events, executor, safety
from emulator.runs.events import Event
from emulator.runs.holder import release_expired_holder
from emulator.runs.state import RunStatus, cancel_refusal, tool_outputs_refusal
from emulator.schemas.common import dump_response_format, dump_tools
from emulator.schemas.runs import FILE_SEARCH_CONTENT, CreateRun, CreateThreadAndRun, RunOptions, SubmitToolOutputs
from emulator.schemas.threads import CreateThread
from emulator.services import messages, threads, vector_stores
from emulator.services.assistants import require_known_model
from emulator.store import assistants
from emulator.store import runs as store
from emulator.store import threads as thread_store
from emulator.store.runs import Run
from emulator.store.threads import Thread

ALLOWED_INCLUDE = frozenset({FILE_SEARCH_CONTENT})


def parse_include(values: list[str] | None) -> frozenset[str]:
    for value in values or []:
        if value not in ALLOWED_INCLUDE:
            raise InvalidRequest(
                f"Invalid value: '{value}'. Supported values are: '{FILE_SEARCH_CONTENT}'.",
                param="include", code="invalid_value",
            )
    return frozenset(values or [])


def _check_tool_choice(choice: Any, tools: list[dict[str, Any]]) -> None:
    if not isinstance(choice, dict):
        return
    if choice["type"] == "function":
        name = (choice.get("function") or {}).get("name")
        if name is None:
            raise InvalidRequest(
                "Missing required parameter: 'tool_choice.function'.", param="tool_choice.function",
                code="missing_required_parameter",
            )
        if not any(tool["type"] == "function" and tool["function"]["name"] == name for tool in tools):
            raise InvalidRequest(
                f"Invalid 'tool_choice': the function '{name}' is not one of the run's tools.", param="tool_choice",
                code="invalid_value",
            )
    elif not any(tool["type"] == choice["type"] for tool in tools):
        raise InvalidRequest(
            f"Invalid 'tool_choice': the tool '{choice['type']}' is not one of the run's tools.", param="tool_choice",
            code="invalid_value",
        )


def _require_searchable_stores(ctx: Ctx, thread: Thread, assistant: Row[Any]) -> None:
    """An expired vector store cannot be used by a run (400), whether the thread's or the assistant's."""
    for owner in (thread, assistant):
        ids = (owner.tool_resources.get("file_search") or {}).get("vector_store_ids", [])
        vector_stores.require_usable(ctx, ids, "tool_resources.file_search.vector_store_ids")


def _new_run(ctx: Ctx, thread: Thread, assistant: Row[Any], body: RunOptions, instructions: str) -> Run:
    if body.model is not None:
        require_known_model(ctx, body.model)
    tools = dump_tools(body.tools) if body.tools is not None else assistant.tools
    tool_choice = body.tool_choice.model_dump(exclude_none=True) if hasattr(body.tool_choice, "model_dump") else (
        body.tool_choice or "auto"
    )
    _check_tool_choice(tool_choice, tools)
    if any(tool["type"] == "file_search" for tool in tools):
        _require_searchable_stores(ctx, thread, assistant)
    truncation = (
        body.truncation_strategy.model_dump() if body.truncation_strategy else {"type": "auto", "last_messages": None}
    )
    response_format = (
        dump_response_format(body.response_format) if "response_format" in body.model_fields_set
        else assistant.response_format
    )
    run = store.create(
        ctx.session, id=ctx.ids.new("run"), tenant=ctx.tenant, thread_id=thread.id, assistant_id=assistant.id,
        created_at=ctx.now, status=RunStatus.QUEUED.value, model=body.model or assistant.model,
        instructions=instructions, tools=tools, tool_resources={}, metadata_=body.metadata or {},
        temperature=assistant.temperature if body.temperature is None else body.temperature,
        top_p=assistant.top_p if body.top_p is None else body.top_p,
        max_prompt_tokens=body.max_prompt_tokens, max_completion_tokens=body.max_completion_tokens,
        truncation_strategy=truncation, tool_choice=tool_choice,
        parallel_tool_calls=True if body.parallel_tool_calls is None else body.parallel_tool_calls,
        response_format=response_format or "auto", reasoning_effort=getattr(body, "reasoning_effort", None),
        expires_at=ctx.now + limits.RUN_EXPIRY_SECONDS, observations=0, prompt_tokens=0, completion_tokens=0,
    )
    release_expired_holder(ctx, thread)
    if not store.claim_thread(ctx.session, thread.id, run.id):
        raise InvalidRequest(f"Thread {thread.id} already has an active run {thread.active_run_id}.")
    if logs.runs.isEnabledFor(logging.INFO):
        ctx.after_commit(functools.partial(logs.run_created, run.id, thread.id))
    return run


def _instructions(assistant: Row[Any], body: RunOptions, additional: str | None) -> str:
    base = body.instructions if body.instructions is not None else (assistant.instructions or "")
    return f"{base}\n{additional}" if additional else base


def create(ctx: Ctx, thread_id: str, body: CreateRun, *, stream: bool) -> tuple[Run, list[Event]]:
    thread = threads.get_live(ctx, thread_id, lock=True)
    assistant = assistants.read(ctx.session, ctx.tenant, body.assistant_id)
    for index, message in enumerate(body.additional_messages or []):
        messages.add(ctx, thread, message, param_prefix=f"additional_messages[{index}].")
    run = _new_run(ctx, thread, assistant, body, _instructions(assistant, body, body.additional_instructions))
    if stream:
        executor.take_lease(run)
    thread_store.touch(thread, ctx.now)
    return run, [events.run_created(run), events.run_status(run)]


def create_thread_and_run(ctx: Ctx, body: CreateThreadAndRun, *, stream: bool) -> tuple[Run, list[Event]]:
    assistant = assistants.read(ctx.session, ctx.tenant, body.assistant_id)
    thread_body = body.thread or CreateThread()
    if body.tool_resources is not None and thread_body.tool_resources is None:
        thread_body = thread_body.model_copy(update={"tool_resources": body.tool_resources})
    thread = threads.create(ctx, thread_body)
    run = _new_run(ctx, thread, assistant, body, _instructions(assistant, body, None))
    if stream:
        executor.take_lease(run)
    return run, [events.thread_created(thread), events.run_created(run), events.run_status(run)]


def observed(ctx: Ctx, thread_id: str, run_id: str) -> Run:
    """The run as a client sees it now: expiry applied and progressed per the policy."""
    threads.get_live(ctx, thread_id, lock=True)
    run = store.get(ctx.session, ctx.tenant, thread_id, run_id)
    safety.observe(ctx, run)
    return run


def observe_active(ctx: Ctx, thread: Thread) -> None:
    """Let the thread's active run (if any) progress before the thread is read or written."""
    if thread.active_run_id is None:
        return
    store.lock_thread(ctx.session, thread.id)
    run = store.get_by_id(ctx.session, thread.active_run_id)
    if run is not None:
        safety.observe(ctx, run)


def cancel(ctx: Ctx, thread_id: str, run_id: str) -> Run:
    threads.get_live(ctx, thread_id, lock=True)
    run = store.get(ctx.session, ctx.tenant, thread_id, run_id)
    executor.expire_if_due(ctx, run)
    refusal = cancel_refusal(run.status)
    if refusal is not None:
        raise InvalidRequest(refusal)
    executor.request_cancel(ctx, run)
    return run


def submit_tool_outputs(
    ctx: Ctx, thread_id: str, run_id: str, body: SubmitToolOutputs, *, stream: bool
) -> tuple[Run, list[Event]]:
    thread = threads.get_live(ctx, thread_id, lock=True)
    run = store.get(ctx.session, ctx.tenant, thread_id, run_id)
    executor.expire_if_due(ctx, run)
    refusal = tool_outputs_refusal(run.status)
    if refusal is not None:
        raise InvalidRequest(refusal)
    outputs = _match_outputs(run, body)
    produced = executor.accept_tool_outputs(ctx, run, outputs)
    if stream:
        executor.take_lease(run)
    thread_store.touch(thread, ctx.now)
    return run, produced


def _match_outputs(run: Run, body: SubmitToolOutputs) -> dict[str, str]:
    expected = [call["id"] for call in run.required_action["submit_tool_outputs"]["tool_calls"]]  # type: ignore[index]
    given: dict[str, str] = {}
    for index, item in enumerate(body.tool_outputs):
        if item.tool_call_id is None:
            raise InvalidRequest(
                f"Missing required parameter: 'tool_outputs[{index}].tool_call_id'.",
                param=f"tool_outputs[{index}].tool_call_id", code="missing_required_parameter",
            )
        if item.tool_call_id not in expected:
            raise InvalidRequest(
                f"No tool call found with id '{item.tool_call_id}'.", param=f"tool_outputs[{index}].tool_call_id"
            )
        if item.tool_call_id in given:
            raise InvalidRequest(
                f"Duplicate tool output for tool call '{item.tool_call_id}'.", param=f"tool_outputs[{index}]"
            )
        given[item.tool_call_id] = item.output or ""
    missing = [call_id for call_id in expected if call_id not in given]
    if missing:
        raise InvalidRequest(
            f"Expected tool outputs for call_ids {expected}, got {list(given)}: missing {missing}.",
            param="tool_outputs",
        )
    return given
