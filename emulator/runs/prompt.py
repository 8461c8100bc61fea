"""Assemble a model call's prompt from the thread, apply the truncation strategy, and count its tokens.

Counted: the system message (instructions and tool definitions), every message kept after truncation,
and the tool results of this run, with the chat format's per-message overhead (see `emulator.tokens`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from emulator import tokens
from emulator.runs.state import StepStatus
from emulator.store.rows import Message, Run, RunStep
from emulator.stub_model import CodeResult, ModelRequest, PromptMessage, RetrievedChunk, ToolResult

IMAGE_TOKENS = 85
"""What one image part costs in a prompt (the real API's low-detail price)."""


@dataclass(frozen=True)
class Assembled:
    request: ModelRequest
    prompt_tokens: int
    dropped_messages: int


@dataclass(frozen=True)
class DoesNotFit:
    prompt_tokens: int
    budget: int


def message_text(content: list[dict[str, Any]]) -> str:
    return "\n".join(part["text"]["value"] for part in content if part.get("type") == "text")


def _image_parts(content: list[dict[str, Any]]) -> int:
    return sum(1 for part in content if part.get("type") in ("image_file", "image_url"))


def _system_text(run: Run) -> str:
    tools = json.dumps(run.tools, separators=(",", ":"), sort_keys=True) if run.tools else ""
    return "\n".join(part for part in (run.instructions, tools) if part)


def _code_text(result: CodeResult) -> str:
    """A code call as the model sees it: the code, its output and the files it made."""
    files = " ".join(f"sandbox:/mnt/data/{made.filename}" for made in result.files)
    return "\n".join(part for part in (result.code, result.logs, files) if part)


def assemble(
    run: Run,
    history: Sequence[Message],
    tool_results: Sequence[ToolResult],
    *,
    encoding: str,
    budget: int,
    retrieved: Sequence[RetrievedChunk] | None = None,
    can_search: bool = False,
    code_results: Sequence[CodeResult] | None = None,
    can_run_code: bool = False,
) -> Assembled | DoesNotFit:
    """The prompt for the next model call of `run`, truncated to `budget` tokens when the strategy allows.

    Chunks retrieved by this run's file_search calls are in the prompt as tool messages, marker included.
    """
    messages = list(history)
    strategy = run.truncation_strategy or {"type": "auto"}
    if strategy.get("type") == "last_messages" and strategy.get("last_messages"):
        messages = messages[-strategy["last_messages"] :]
    texts = [message_text(row.content) for row in messages]
    costs = [
        tokens.count_message(row.role, text, encoding) + IMAGE_TOKENS * _image_parts(row.content)
        for row, text in zip(messages, texts, strict=True)
    ]
    system = _system_text(run)
    fixed = tokens.PROMPT_PRIMING_TOKENS + (tokens.count_message("system", system, encoding) if system else 0)
    fixed += sum(
        tokens.count_message("tool", f"{result.name}({result.arguments}) -> {result.output}", encoding)
        for result in tool_results
    )
    fixed += sum(tokens.count_message("tool", f"{chunk.marker} {chunk.text}", encoding) for chunk in retrieved or ())
    fixed += sum(tokens.count_message("tool", _code_text(result), encoding) for result in code_results or ())
    total = fixed + sum(costs)
    start = 0
    if strategy.get("type") == "auto":
        while total > budget and start < len(messages) - 1:
            total -= costs[start]
            start += 1
    if total > budget:
        return DoesNotFit(prompt_tokens=total, budget=budget)
    kept = tuple(PromptMessage(row.role, text) for row, text in zip(messages[start:], texts[start:], strict=True))
    request = ModelRequest(
        model=run.model,
        instructions=run.instructions,
        messages=kept,
        tools=tuple(run.tools),
        tool_choice=run.tool_choice,
        parallel_tool_calls=run.parallel_tool_calls,
        response_format=run.response_format,
        tool_results=tuple(tool_results),
        retrieved=None if retrieved is None else tuple(retrieved),
        can_search=can_search,
        code_results=None if code_results is None else tuple(code_results),
        can_run_code=can_run_code,
    )
    return Assembled(request=request, prompt_tokens=total, dropped_messages=start + len(history) - len(messages))


def completed_tool_calls(steps: list[RunStep], kind: str) -> list[dict[str, Any]]:
    """The `kind` calls (function, file_search, code_interpreter) of the completed tool_calls steps among
    `steps`, in order: what the run's next model call sees of its tools."""
    return [
        call
        for step in steps
        if step.type == "tool_calls" and step.status == StepStatus.COMPLETED
        for call in step.step_details["tool_calls"]
        if call["type"] == kind
    ]
