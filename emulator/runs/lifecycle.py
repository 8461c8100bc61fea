"""A run's life as clients drive it: created (with the one-active-run claim on its thread), observed,
cancelled, given its tool outputs. The service layer (`services.runs`) finds the thread and the assistant and
checks what lies outside runs (the model, the vector stores); this module does the rest."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Any

from emulator import limits, logs
from emulator.context import Ctx
from emulator.errors import InvalidRequest
from emulator.runs import events, leases, phases, safety, schedule, upstream_turn, wakeups
from emulator.runs.events import Event
from emulator.runs.state import RunStatus, cancel_refusal, tool_outputs_refusal
from emulator.schemas.common import dump_response_format, dump_tools
from emulator.schemas.runs import FILE_SEARCH_CONTENT, RunOptions, SubmitToolOutputs
from emulator.store import runs as store
from emulator.store.rows import Assistant, Run, Thread

ALLOWED_INCLUDE = frozenset({FILE_SEARCH_CONTENT})


def parse_include(values: list[str] | None) -> frozenset[str]:
    for value in values or []:
        if value not in ALLOWED_INCLUDE:
            raise InvalidRequest(
                f"Invalid value: '{value}'. Supported values are: '{FILE_SEARCH_CONTENT}'.",
                param="include", code="invalid_value",
            )
    return frozenset(values or [])


@dataclass(frozen=True)
class Tools:
    """The run's tools (the request's, else the assistant's) and its checked `tool_choice`."""

    tools: list[dict[str, Any]]
    choice: Any

    @property
    def searches_files(self) -> bool:
        return any(tool["type"] == "file_search" for tool in self.tools)


def tools_of(body: RunOptions, assistant: Assistant) -> Tools:
    tools = dump_tools(body.tools) if body.tools is not None else assistant.tools
    choice = body.tool_choice.model_dump(exclude_none=True) if not isinstance(body.tool_choice, str | None) else (
        body.tool_choice or "auto"
    )
    _check_tool_choice(choice, tools)
    return Tools(tools, choice)


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


def instructions(assistant: Assistant, body: RunOptions, additional: str | None) -> str:
    base = body.instructions if body.instructions is not None else (assistant.instructions or "")
    return f"{base}\n{additional}" if additional else base


def create(
    ctx: Ctx, thread: Thread, assistant: Assistant, body: RunOptions, tools: Tools, instructions: str,
    *, stream: bool,
) -> Run:
    """A queued run holding its thread (400 while another run holds it); a stream's run under its lease."""
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
        instructions=instructions, tools=tools.tools, tool_resources={}, metadata_=body.metadata or {},
        temperature=assistant.temperature if body.temperature is None else body.temperature,
        top_p=assistant.top_p if body.top_p is None else body.top_p,
        max_prompt_tokens=body.max_prompt_tokens, max_completion_tokens=body.max_completion_tokens,
        truncation_strategy=truncation, tool_choice=tools.choice,
        parallel_tool_calls=True if body.parallel_tool_calls is None else body.parallel_tool_calls,
        response_format=response_format or "auto", reasoning_effort=getattr(body, "reasoning_effort", None),
        expires_at=ctx.now + limits.RUN_EXPIRY_SECONDS, observations=0, prompt_tokens=0, completion_tokens=0,
        lease_until=leases.stream_lease_until() if stream else None, due_at=schedule.new_run_due_at(ctx),
    )
    release_expired_holder(ctx, thread)
    if not store.claim_thread(ctx.session, thread.id, run.id):
        raise InvalidRequest(f"Thread {thread.id} already has an active run {thread.active_run_id}.")
    if logs.runs.isEnabledFor(logging.INFO):
        ctx.after_commit(functools.partial(logs.run_created, run.id, thread.id))
    wakeups.tell(ctx, run)
    return run


def opening_events(run: Run) -> list[Event]:
    return [events.run_created(run), events.run_status(run)]


def release_expired_holder(ctx: Ctx, thread: Thread) -> None:
    """A run that expired unobserved still holds its thread; looking at it frees the thread."""
    if thread.active_run_id is None:
        return
    holder = store.get_by_id(ctx.session, thread.active_run_id)
    if holder is None:
        store.release_thread(ctx.session, thread.id, thread.active_run_id)
    else:
        phases.expire_if_due(ctx, holder)


def observed(ctx: Ctx, thread_id: str, run_id: str) -> Run:
    """The run as a client sees it now: expiry applied, progressed per the policy (the caller locked its
    thread first, the lock order of `store.runs`)."""
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
    run = store.get(ctx.session, ctx.tenant, thread_id, run_id)
    phases.expire_if_due(ctx, run)
    refusal = cancel_refusal(run.status)
    if refusal is not None:
        raise InvalidRequest(refusal)
    phases.request_cancel(ctx, run)
    upstream_turn.abort(ctx, run.id)
    schedule.plan(ctx, run)
    return run


def submit_tool_outputs(
    ctx: Ctx, thread_id: str, run_id: str, body: SubmitToolOutputs, *, stream: bool
) -> tuple[Run, list[Event]]:
    run = store.get(ctx.session, ctx.tenant, thread_id, run_id)
    phases.expire_if_due(ctx, run)
    refusal = tool_outputs_refusal(run.status)
    if refusal is not None:
        raise InvalidRequest(refusal)
    produced = phases.accept_tool_outputs(ctx, run, _match_outputs(run, body))
    if stream:
        leases.take(run)
    schedule.plan(ctx, run)
    return run, produced


def _match_outputs(run: Run, body: SubmitToolOutputs) -> dict[str, str]:
    assert run.required_action is not None  # a run that requires action says which calls
    expected = [call["id"] for call in run.required_action["submit_tool_outputs"]["tool_calls"]]
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
