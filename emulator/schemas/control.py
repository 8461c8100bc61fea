"""Wire shapes of the control plane (`/_emulator/...`): scripted turns, fault rules, rate limits, latency."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from emulator.operations import OPERATIONS
from emulator.schemas.common import Metadata, StrictModel, openai_error
from emulator.store import rows


def _compiles(pattern: str | None) -> str | None:
    if pattern is not None:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise openai_error(f"Invalid 'match.message_regex': {exc}.") from exc
    return pattern


class TurnMatch(StrictModel):
    """Which model calls a turn answers; every given condition must hold (none given: any call)."""

    assistant_id: str | None = None
    thread_id: str | None = None
    metadata: Metadata = None
    """A subset of the run's metadata."""
    message_regex: Annotated[str | None, AfterValidator(_compiles)] = None
    """Searched (re.search) in the last user message."""


class _Turn(StrictModel):
    match: TurnMatch | None = None


class TextTurn(_Turn):
    type: Literal["text"]
    text: str
    chunk_size: Annotated[int | None, Field(ge=1)] = None
    """Characters per streamed `thread.message.delta` (default: one word per delta)."""


class FunctionCallSpec(StrictModel):
    name: str
    arguments: dict[str, Any] | str = Field(default_factory=dict)


class FunctionCallsTurn(_Turn):
    type: Literal["function_calls"]
    calls: Annotated[list[FunctionCallSpec], Field(min_length=1)]


class FailureTurn(_Turn):
    type: Literal["failure"]
    code: Literal["server_error", "rate_limit_exceeded", "invalid_prompt"] = "server_error"
    message: str = "The model failed to answer (scripted failure)."


class IncompleteTurn(_Turn):
    type: Literal["incomplete"]
    reason: Literal["max_completion_tokens", "max_prompt_tokens"] = "max_completion_tokens"
    text: str | None = None
    """Partial text left in an `incomplete` message (max_completion_tokens only)."""


class DelayTurn(_Turn):
    type: Literal["delay"]
    seconds: Annotated[float, Field(ge=0, le=3600)]
    """Added to the next model call's latency; the call is then answered by the next turn or the default."""


class FileSearchTurn(_Turn):
    type: Literal["file_search"]
    query: str


class CodeInterpreterTurn(_Turn):
    type: Literal["code_interpreter"]
    code: str


ScriptTurn = Annotated[
    TextTurn | FunctionCallsTurn | FailureTurn | IncompleteTurn | DelayTurn | FileSearchTurn | CodeInterpreterTurn,
    Field(discriminator="type"),
]


class AddTurns(StrictModel):
    turns: Annotated[list[ScriptTurn], Field(min_length=1)]


_OPERATION_NAMES = frozenset(name for _method, _path, name in OPERATIONS)


def _known_operation(name: str | None) -> str | None:
    if name is not None and name not in _OPERATION_NAMES:
        raise openai_error(f"Invalid 'match.operation': unknown operation '{name}'.")
    return name


class FaultMatch(StrictModel):
    method: Literal["GET", "POST", "DELETE"] | None = None
    path: str | None = None
    """A glob on the request path (`fnmatch`), e.g. `/v1/threads/*/runs`."""
    operation: Annotated[str | None, AfterValidator(_known_operation)] = None
    """An official operationId, e.g. `createRun`."""


class ErrorEffect(StrictModel):
    type: Literal["error"]
    status: Literal[429, 500, 503]
    message: str | None = None
    retry_after_seconds: Annotated[float | None, Field(ge=0)] = None


class LatencyEffect(StrictModel):
    type: Literal["latency"]
    ms: Annotated[int, Field(ge=0, le=600_000)]


class StreamCutEffect(StrictModel):
    type: Literal["stream_cut"]
    after_events: Annotated[int, Field(ge=0)]


class FaultRule(StrictModel):
    match: FaultMatch = FaultMatch()
    effect: Annotated[ErrorEffect | LatencyEffect | StreamCutEffect, Field(discriminator="type")]
    probability: Annotated[float, Field(ge=0, le=1)] = 1.0
    seed: int = 0
    times: Annotated[int | None, Field(ge=1)] = None
    """Fire at most this many times (e.g. 1 for a one-shot fault)."""


class AddFaults(StrictModel):
    rules: Annotated[list[FaultRule], Field(min_length=1)]


class ModelLimits(StrictModel):
    requests_per_minute: Annotated[int | None, Field(ge=1)] = None
    tokens_per_minute: Annotated[int | None, Field(ge=1)] = None


class ManagementLimits(StrictModel):
    """Requests per minute on the Assistants endpoints, per method, and for creating runs."""

    get: Annotated[int | None, Field(ge=1)] = None
    post: Annotated[int | None, Field(ge=1)] = None
    delete: Annotated[int | None, Field(ge=1)] = None
    create_run: Annotated[int | None, Field(ge=1)] = None


def _replaced_by_management(value: int | None) -> int | None:
    if value is not None:
        raise openai_error(
            "'requests_per_minute' is replaced by 'management': requests per minute on the Assistants endpoints "
            "by method ('get', 'post', 'delete') and for creating runs ('create_run'), as the hosted API limited "
            "them."
        )
    return value


class RateLimits(StrictModel):
    tier: Literal["free", "tier-1", "tier-2", "tier-3", "tier-4", "tier-5"] | None = None
    """A preset; explicit numbers below override it."""
    management: ManagementLimits | None = None
    """The Assistants endpoints (not files, not models); every preset has the published GET 1,000, POST 300,
    DELETE 300 and run creation 200 per minute."""
    requests_per_minute: Annotated[int | None, AfterValidator(_replaced_by_management)] = None
    """The former single management limit: refused with a pointer to `management`."""
    models: dict[str, ModelLimits] | None = None
    """Model calls of runs, per model; `"*"` applies to every model without its own entry."""


class LatencyProfile(StrictModel):
    ttft_ms: Annotated[int, Field(ge=0, le=600_000)] = 0
    tokens_per_second: Annotated[float, Field(ge=0)] = 0.0


class Latency(LatencyProfile):
    models: dict[str, LatencyProfile] | None = None


def render_turn(turn: rows.ScriptedTurn) -> dict[str, Any]:
    return {
        "id": turn.id,
        "object": "emulator.scripted_turn",
        "created_at": turn.created_at,
        "match": turn.match,
        "turn": turn.turn,
        "consumed_at": turn.consumed_at,
        "run_id": turn.consumed_by_run,
        "request": turn.request,
    }


def render_fault(rule: rows.FaultRule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "object": "emulator.fault_rule",
        "created_at": rule.created_at,
        **rule.rule,
        "hits": rule.hits,
        "fired": rule.fired,
    }
