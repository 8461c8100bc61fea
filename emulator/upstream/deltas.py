"""What a streamed chat completion is made of, as typed deltas, and the turn they add up to.

Chunk parsing is lenient where servers differ harmlessly (a tool call without `index` or `id`, arguments sent as
an object, `usage: null` on every chunk, usage on the last content chunk) and strict where the answer would be
wrong: a chunk that is not a JSON object, fields of the wrong type, tool arguments that are not a JSON object.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from emulator.upstream.errors import UpstreamError


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ToolCallDelta:
    """A piece of the tool call at `index` of this turn: its id and name when first seen, then argument text."""

    index: int
    id: str | None
    name: str | None
    arguments: str


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class Finish:
    reason: str
    """`stop`, `length` (the completion cap was reached), `tool_calls`, `content_filter`, or the server's own."""


Delta = TextDelta | ToolCallDelta | Usage | Finish


class MalformedChunk(ValueError):
    """A chunk that does not say what a chat completion chunk says; the message says what is wrong."""


class ReportedError(Exception):
    """An error object the upstream sent in place of a chunk (OpenAI and vLLM do, mid-stream)."""

    def __init__(self, message: str, code: str | None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def _expect(value: Any, kind: type | tuple[type, ...], what: str) -> Any:
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise MalformedChunk(f"{what} is {type(value).__name__}, not {getattr(kind, '__name__', kind)}")
    return value


def _arguments(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return str(_expect(value, str, "tool call arguments"))


def _tool_call_deltas(calls: Any) -> list[Delta]:
    deltas: list[Delta] = []
    for position, call in enumerate(_expect(calls, list, "delta.tool_calls")):
        _expect(call, dict, "a tool call")
        function = _expect(call.get("function") or {}, dict, "tool call function")
        call_id = call.get("id")
        name = function.get("name")
        deltas.append(
            ToolCallDelta(
                index=_expect(call.get("index", position), int, "tool call index"),
                id=None if call_id is None else _expect(call_id, str, "tool call id"),
                name=None if name is None else _expect(name, str, "tool call name"),
                arguments=_arguments(function.get("arguments")),
            )
        )
    return deltas


def _usage(usage: Any) -> Usage | None:
    if usage is None:
        return None
    _expect(usage, dict, "usage")
    return Usage(
        prompt_tokens=_expect(usage.get("prompt_tokens", 0), int, "usage.prompt_tokens"),
        completion_tokens=_expect(usage.get("completion_tokens", 0), int, "usage.completion_tokens"),
    )


def _choice_deltas(choice: Any, content_key: str) -> list[Delta]:
    _expect(choice, dict, "a choice")
    if choice.get("index", 0) != 0:
        return []
    message = _expect(choice.get(content_key) or {}, dict, f"choice.{content_key}")
    deltas: list[Delta] = []
    content = message.get("content")
    if content is not None and _expect(content, str, f"{content_key}.content"):
        deltas.append(TextDelta(content))
    if message.get("tool_calls") is not None:
        deltas.extend(_tool_call_deltas(message["tool_calls"]))
    reason = choice.get("finish_reason")
    if reason is not None:
        deltas.append(Finish(_expect(reason, str, "finish_reason")))
    return deltas


def _quote(data: str | bytes) -> str:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    return repr(text[:200])


def parse_chunk(data: str | bytes) -> list[Delta]:
    """The deltas of one `data:` payload of the stream (a `chat.completion.chunk`).

    Raises MalformedChunk for what cannot be read, ReportedError for an error the server sent in the stream.
    """
    try:
        chunk = json.loads(data)
    except json.JSONDecodeError as exc:
        raise MalformedChunk(f"a chunk is not JSON ({exc.msg} at character {exc.pos}): {_quote(data)}") from exc
    return _completion_deltas(chunk, "delta")


def parse_completion(data: str | bytes) -> list[Delta]:
    """The deltas of a whole (not streamed) `chat.completion`, from a server that ignored `stream: true`."""
    try:
        completion = json.loads(data)
    except json.JSONDecodeError as exc:
        raise MalformedChunk(f"the answer is not JSON ({exc.msg} at character {exc.pos}): {_quote(data)}") from exc
    return _completion_deltas(completion, "message")


def _completion_deltas(chunk: Any, content_key: str) -> list[Delta]:
    _expect(chunk, dict, "a chunk")
    if chunk.get("error") is not None:
        error = chunk["error"]
        if isinstance(error, dict):
            code = error.get("code") or error.get("type")
            raise ReportedError(str(error.get("message") or error), code if isinstance(code, str) else None)
        raise ReportedError(str(error), None)
    deltas: list[Delta] = []
    for choice in _expect(chunk.get("choices") or [], list, "choices"):
        deltas.extend(_choice_deltas(choice, content_key))
    usage = _usage(chunk.get("usage"))
    if usage is not None:
        deltas.append(usage)
    return deltas


@dataclass(frozen=True)
class UpstreamToolCall:
    id: str | None
    """The upstream's call id (some servers send none; the emulator names its calls itself anyway)."""
    name: str
    arguments: str
    """The arguments as the upstream wrote them, followed by `{}` when it wrote nothing but blanks: what the
    run's streams showed of them, fragment by fragment, then the `{}` (`runs.live.LiveTurn.close_calls`)."""
    parsed: dict[str, Any]


@dataclass(frozen=True)
class FinishedTurn:
    text: str
    tool_calls: tuple[UpstreamToolCall, ...]
    usage: Usage | None
    """The upstream's count, when it reported one (otherwise count with tiktoken)."""
    finish_reason: str | None


@dataclass
class _PartialCall:
    id: str | None = None
    name: str = ""
    arguments: list[str] = field(default_factory=list)


def complete_arguments(written: str) -> str:
    """A call's arguments from what the upstream wrote: unchanged (a client that adds up the streamed fragments
    gets them), or `{}` added when they are blank (no arguments is the empty object, as the stub's)."""
    return written if written.strip() else written + "{}"


class TurnAssembler:
    """Adds deltas up into the finished turn."""

    def __init__(self) -> None:
        self._text: list[str] = []
        self._calls: dict[int, _PartialCall] = {}
        self.usage: Usage | None = None
        self.finish_reason: str | None = None

    @property
    def text(self) -> str:
        return "".join(self._text)

    def add(self, delta: Delta) -> None:
        if isinstance(delta, TextDelta):
            self._text.append(delta.text)
        elif isinstance(delta, ToolCallDelta):
            call = self._calls.setdefault(delta.index, _PartialCall())
            call.id = call.id or delta.id
            call.name = call.name or (delta.name or "")
            call.arguments.append(delta.arguments)
        elif isinstance(delta, Usage):
            self.usage = delta
        else:
            self.finish_reason = delta.reason

    def finish(self) -> FinishedTurn:
        """The turn; UpstreamError (`server_error`) when a tool call has no name or unparseable arguments."""
        calls = []
        for index in sorted(self._calls):
            partial = self._calls[index]
            arguments = complete_arguments("".join(partial.arguments))
            if not partial.name:
                raise UpstreamError(
                    "server_error", f"the upstream's tool call {index} has no function name", kind="invalid_arguments"
                )
            try:
                parsed = json.loads(arguments)
            except json.JSONDecodeError as exc:
                raise UpstreamError(
                    "server_error",
                    f"the upstream's arguments for {partial.name} are not valid JSON ({exc.msg} at character "
                    f"{exc.pos}): {arguments[:200]!r}",
                    kind="invalid_arguments",
                ) from exc
            if not isinstance(parsed, dict):
                raise UpstreamError(
                    "server_error",
                    f"the upstream's arguments for {partial.name} are not a JSON object: {arguments[:200]!r}",
                    kind="invalid_arguments",
                )
            calls.append(UpstreamToolCall(partial.id, partial.name, arguments, parsed))
        return FinishedTurn(self.text, tuple(calls), self.usage, self.finish_reason)
