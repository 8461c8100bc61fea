"""Wire shapes of runs, run steps and tool outputs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field

from emulator import limits
from emulator.runs.state import TERMINAL, RunStatus
from emulator.schemas.common import (
    Metadata,
    ReasoningEffort,
    ResponseFormat,
    StrictModel,
    Temperature,
    Tool,
    ToolResources,
    TopP,
)
from emulator.schemas.messages import CreateMessage
from emulator.schemas.threads import CreateThread

if TYPE_CHECKING:
    from emulator.store.rows import Run, RunStep

TokenBound = Annotated[int | None, Field(ge=limits.RUN_MIN_TOKEN_BOUND, le=limits.RUN_MAX_TOKEN_BOUND)]
RunTools = Annotated[list[Tool] | None, Field(max_length=limits.RUN_MAX_TOOLS_OVERRIDE)]


class TruncationStrategy(StrictModel):
    type: Literal["auto", "last_messages"]
    last_messages: Annotated[int | None, Field(ge=1)] = None


class NamedFunction(StrictModel):
    name: str


class NamedToolChoice(StrictModel):
    type: Literal["function", "code_interpreter", "file_search"]
    function: NamedFunction | None = None


ToolChoice = Literal["none", "auto", "required"] | NamedToolChoice | None


class RunOptions(StrictModel):
    """What create-run and create-thread-and-run share."""

    assistant_id: str
    model: str | None = None
    instructions: str | None = None
    tools: RunTools = None
    metadata: Metadata = None
    temperature: Temperature = None
    top_p: TopP = None
    stream: bool | None = None
    max_prompt_tokens: TokenBound = None
    max_completion_tokens: TokenBound = None
    truncation_strategy: TruncationStrategy | None = None
    tool_choice: ToolChoice = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat = None


class CreateRun(RunOptions):
    reasoning_effort: ReasoningEffort = None
    additional_instructions: str | None = None
    additional_messages: list[CreateMessage] | None = None


class CreateThreadAndRun(RunOptions):
    thread: CreateThread | None = None
    tool_resources: ToolResources | None = None


class ToolOutput(StrictModel):
    tool_call_id: str | None = None
    output: str | None = None


class SubmitToolOutputs(StrictModel):
    tool_outputs: list[ToolOutput]
    stream: bool | None = None


class ModifyRun(StrictModel):
    metadata: Metadata = None


def render_usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def render_run(row: Run) -> dict[str, Any]:
    terminal = RunStatus(row.status) in TERMINAL
    return {
        "id": row.id,
        "object": "thread.run",
        "created_at": row.created_at,
        "assistant_id": row.assistant_id,
        "thread_id": row.thread_id,
        "status": row.status,
        "started_at": row.started_at,
        "expires_at": None if terminal else row.expires_at,
        "cancelled_at": row.cancelled_at,
        "failed_at": row.failed_at,
        "completed_at": row.completed_at,
        "required_action": row.required_action,
        "last_error": row.last_error,
        "model": row.model,
        "instructions": row.instructions,
        "tools": row.tools,
        "metadata": row.metadata_,
        "temperature": row.temperature,
        "top_p": row.top_p,
        "max_completion_tokens": row.max_completion_tokens,
        "max_prompt_tokens": row.max_prompt_tokens,
        "truncation_strategy": row.truncation_strategy,
        "incomplete_details": row.incomplete_details,
        "usage": render_usage(row.prompt_tokens, row.completion_tokens) if terminal else None,
        "response_format": row.response_format,
        "tool_choice": row.tool_choice,
        "parallel_tool_calls": row.parallel_tool_calls,
    }


FILE_SEARCH_CONTENT = "step_details.tool_calls[*].file_search.results[*].content"


def render_step(row: RunStep, include: frozenset[str] = frozenset()) -> dict[str, Any]:
    details = row.step_details
    if FILE_SEARCH_CONTENT not in include and details.get("type") == "tool_calls":
        details = _without_file_search_content(details)
    return {
        "id": row.id,
        "object": "thread.run.step",
        "created_at": row.created_at,
        "assistant_id": row.assistant_id,
        "thread_id": row.thread_id,
        "run_id": row.run_id,
        "type": row.type,
        "status": row.status,
        "step_details": details,
        "last_error": row.last_error,
        "expired_at": row.expired_at,
        "cancelled_at": row.cancelled_at,
        "failed_at": row.failed_at,
        "completed_at": row.completed_at,
        "metadata": row.metadata_,
        "usage": row.usage,
    }


def _without_file_search_content(details: dict[str, Any]) -> dict[str, Any]:
    calls = []
    for call in details["tool_calls"]:
        if call.get("type") == "file_search" and call["file_search"].get("results"):
            results = [{k: v for k, v in result.items() if k != "content"} for result in call["file_search"]["results"]]
            call = {**call, "file_search": {**call["file_search"], "results": results}}
        calls.append(call)
    return {**details, "tool_calls": calls}
