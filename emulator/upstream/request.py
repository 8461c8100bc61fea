"""One model turn as the upstream is asked it, and the chat completions body that asks it.

What the upstream receives: the instructions as the system message, the thread's messages kept after
truncation, this run's earlier tool calls with their outputs (an assistant message with `tool_calls`, then one
`tool` message per call), the tools (function tools as given; the built-in `file_search` and
`code_interpreter` as functions of one string parameter, since chat completions has no built-ins), and the
sampling settings. The executor runs the built-ins itself when the upstream calls them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

FILE_SEARCH = "file_search"
CODE_INTERPRETER = "code_interpreter"
BUILT_IN_NAMES = frozenset({FILE_SEARCH, CODE_INTERPRETER})

FILE_SEARCH_FUNCTION: dict[str, Any] = {
    "name": FILE_SEARCH,
    "description": (
        "Search the files attached to this conversation. Returns the most relevant passages, each after a "
        "marker such as 【0:1†report.pdf】; copy a passage's marker right after the sentence it supports."
    ),
    "parameters": {
        "type": "object",
        "properties": {"query": {"type": "string", "description": "What to look for, in a few words."}},
        "required": ["query"],
        "additionalProperties": False,
    },
}
CODE_INTERPRETER_FUNCTION: dict[str, Any] = {
    "name": CODE_INTERPRETER,
    "description": (
        "Run Python code in a sandbox and get what it prints. Files of the conversation and files the code "
        "writes are in /mnt/data; link a file the code wrote as sandbox:/mnt/data/<name>."
    ),
    "parameters": {
        "type": "object",
        "properties": {"code": {"type": "string", "description": "The Python code to run."}},
        "required": ["code"],
        "additionalProperties": False,
    },
}
_BUILT_INS = {FILE_SEARCH: FILE_SEARCH_FUNCTION, CODE_INTERPRETER: CODE_INTERPRETER_FUNCTION}


@dataclass(frozen=True)
class ConversationMessage:
    """A thread message kept after truncation: its text parts joined by newlines, image parts left out."""

    role: Literal["user", "assistant"]
    text: str


@dataclass(frozen=True)
class ToolCallOutcome:
    """One tool call this run made and what it gave back."""

    call_id: str
    name: str
    """The function's name, or `file_search` / `code_interpreter` for a built-in."""
    arguments: str
    """The call's arguments as JSON text (a built-in's: `{"query": …}` / `{"code": …}`)."""
    output: str
    """The submitted output; for a built-in, what it produced as the upstream should read it."""


@dataclass(frozen=True)
class ToolRound:
    """The tool calls of one earlier model turn of this run (one `tool_calls` run step), in order."""

    calls: tuple[ToolCallOutcome, ...]


@dataclass(frozen=True)
class TurnRequest:
    model: str
    """The run's Assistants model id (the config maps it to an upstream model)."""
    instructions: str
    """The run's instructions, additional_instructions included: the system message (none when empty)."""
    messages: tuple[ConversationMessage, ...]
    tool_rounds: tuple[ToolRound, ...] = ()
    tools: tuple[Mapping[str, Any], ...] = ()
    """The run's tools as the Assistants API has them (`{"type": "function", "function": {...}}`,
    `{"type": "file_search", ...}`, `{"type": "code_interpreter"}`)."""
    tool_choice: str | Mapping[str, Any] = "auto"
    parallel_tool_calls: bool = True
    temperature: float | None = None
    top_p: float | None = None
    response_format: str | Mapping[str, Any] | None = "auto"
    max_completion_tokens: int | None = None
    """What the run may still spend on completions (None: no cap)."""

    @property
    def last_user_text(self) -> str:
        """What a scripted turn's `message_regex` is searched in."""
        return next((message.text for message in reversed(self.messages) if message.role == "user"), "")


def chat_tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    """An Assistants tool as a chat completions tool: a function tool as given, a built-in as its function."""
    kind = tool.get("type")
    if kind == "function":
        return {"type": "function", "function": dict(tool["function"])}
    if kind in _BUILT_INS:
        return {"type": "function", "function": _BUILT_INS[kind]}
    raise ValueError(f"tool type {kind!r} has no chat completions equivalent")


def chat_tool_choice(choice: str | Mapping[str, Any]) -> str | dict[str, Any]:
    """`auto` / `none` / `required` as they are; a named built-in (`{"type": "file_search"}`) as its function."""
    if isinstance(choice, str):
        return choice
    kind = choice.get("type")
    if kind == "function":
        return {"type": "function", "function": {"name": choice["function"]["name"]}}
    if kind in _BUILT_INS:
        return {"type": "function", "function": {"name": kind}}
    raise ValueError(f"tool_choice {dict(choice)!r} has no chat completions equivalent")


def chat_response_format(response_format: str | Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The chat completions `response_format` (None: leave it out, plain text)."""
    if response_format is None or response_format == "auto":
        return None
    if isinstance(response_format, str):
        raise ValueError(f"response_format {response_format!r} has no chat completions equivalent")
    kind = response_format.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        given = response_format.get("json_schema") or {}
        schema = {key: given[key] for key in ("name", "description", "schema", "strict") if given.get(key) is not None}
        return {"type": "json_schema", "json_schema": schema}
    raise ValueError(f"response_format type {kind!r} has no chat completions equivalent")


def chat_messages(request: TurnRequest) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if request.instructions:
        messages.append({"role": "system", "content": request.instructions})
    messages.extend({"role": message.role, "content": message.text} for message in request.messages)
    for tool_round in request.tool_rounds:
        messages.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": call.call_id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": call.arguments},
                    }
                    for call in tool_round.calls
                ],
            }
        )
        messages.extend(
            {"role": "tool", "tool_call_id": call.call_id, "content": call.output} for call in tool_round.calls
        )
    return messages


def chat_completions_body(request: TurnRequest, upstream_model: str) -> dict[str, Any]:
    """The JSON body of `POST /chat/completions` for this turn, streamed with usage requested."""
    body: dict[str, Any] = {
        "model": upstream_model,
        "messages": chat_messages(request),
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if request.tools:
        # Only with tools: OpenAI refuses `parallel_tool_calls` and `tool_choice` in a request without any.
        body["tools"] = [chat_tool(tool) for tool in request.tools]
        body["tool_choice"] = chat_tool_choice(request.tool_choice)
        body["parallel_tool_calls"] = request.parallel_tool_calls
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    response_format = chat_response_format(request.response_format)
    if response_format is not None:
        body["response_format"] = response_format
    if request.max_completion_tokens is not None:
        body["max_completion_tokens"] = request.max_completion_tokens
    return body


def retrieval_output(passages: Sequence[tuple[str, str]]) -> str:
    """A file_search call's output for the upstream: each `(marker, text)` passage after its marker, so that the
    model can cite it by copying the marker (which the executor turns into a `file_citation`)."""
    if not passages:
        return "No relevant passages were found in the files."
    return "\n\n".join(f"{marker} {text}" for marker, text in passages)
