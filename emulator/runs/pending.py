"""The pending turn of a run: the model's answer between the call that made it and the phase that delivers it.

A model call stores what it answered on the run (`runs.pending_turn`, JSON) and a later phase delivers it: the
text of a message (`TextTurn`), the function calls awaiting outputs (`FunctionCallsTurn`), or a code cell to run
(`CodeTurn`). The JSON keeps its stored shape (`kind` and flat keys), so runs stored by an earlier version read
the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

from emulator.store.rows import Run

Usage = dict[str, int]
Claimant = dict[str, Any]


@dataclass(frozen=True)
class Timing:
    """When the answer is ready: a stream delivers from its first token, a poll sees it once it is done."""

    first_token_at: float = 0.0
    done_at: float = 0.0
    delta_pause: float = 0.0
    """Seconds between message deltas (the token rate)."""

    def ready_at(self, *, streaming: bool) -> float:
        return self.first_token_at if streaming else self.done_at


NO_WAIT = Timing()


@dataclass(frozen=True)
class TextTurn:
    """An answer's text for the open message (`message_id`) of its message_creation step."""

    step_id: str
    usage: Usage
    timing: Timing
    message_id: str
    text: str
    truncated: bool
    chunk_size: int | None = None
    """Characters per message delta; None: a word per delta."""
    citations: list[dict[str, str]] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    streamed: bool = False
    """The text reached the run's streams as the upstream sent it (`live`): its delivery sends no text again."""
    kind: Literal["text"] = "text"


@dataclass(frozen=True)
class FunctionCallsTurn:
    """Function calls on the open tool_calls step: the run requires action once they are ready."""

    step_id: str
    usage: Usage
    timing: Timing
    kind: Literal["tool_calls"] = "tool_calls"


@dataclass(frozen=True)
class CodeTurn:
    """A code cell to run for the open tool_calls step; `claimed_by` names the server running it
    (`code_interpreter.claim_orphaned`)."""

    step_id: str
    usage: Usage
    code: str
    call_id: str
    claimed_by: Claimant | None = None
    kind: Literal["code"] = "code"

    @property
    def timing(self) -> Timing:
        return NO_WAIT

    def claimed(self, claimant: Claimant) -> CodeTurn:
        return replace(self, claimed_by=claimant)


PendingTurn = TextTurn | FunctionCallsTurn | CodeTurn


def to_json(turn: PendingTurn) -> dict[str, Any]:
    if isinstance(turn, CodeTurn):
        stored: dict[str, Any] = {"kind": "code", "code": turn.code, "call_id": turn.call_id,
                                  "step_id": turn.step_id, "usage": turn.usage}
        if turn.claimed_by is not None:
            stored["claimed_by"] = turn.claimed_by
        return stored
    timing = {"first_token_at": turn.timing.first_token_at, "done_at": turn.timing.done_at,
              "delta_pause": turn.timing.delta_pause}
    if isinstance(turn, FunctionCallsTurn):
        return {"kind": "tool_calls", "usage": turn.usage, "step_id": turn.step_id, **timing}
    stored = {"kind": "text", "text": turn.text, "truncated": turn.truncated, "usage": turn.usage,
              "message_id": turn.message_id, "step_id": turn.step_id, **timing, "chunk_size": turn.chunk_size,
              "citations": turn.citations, "images": turn.images}
    if turn.streamed:
        stored["streamed"] = True
    return stored


def from_json(stored: dict[str, Any]) -> PendingTurn:
    kind = stored["kind"]
    if kind == "code":
        return CodeTurn(stored["step_id"], stored["usage"], stored["code"], stored["call_id"],
                        stored.get("claimed_by"))
    timing = Timing(stored.get("first_token_at", 0.0), stored.get("done_at", 0.0), stored.get("delta_pause", 0.0))
    if kind == "tool_calls":
        return FunctionCallsTurn(stored["step_id"], stored["usage"], timing)
    if kind == "text":
        return TextTurn(stored["step_id"], stored["usage"], timing, stored["message_id"], stored["text"],
                        stored["truncated"], stored.get("chunk_size"), stored.get("citations") or [],
                        stored.get("images") or [], bool(stored.get("streamed")))
    raise ValueError(f"a pending turn of unknown kind {kind!r}")


def of(run: Run) -> PendingTurn | None:
    """The run's pending turn, if it has one."""
    stored = run.pending_turn
    return None if stored is None else from_json(stored)


def is_code(stored: dict[str, Any] | None) -> bool:
    """A stored pending turn (`Run.pending_turn`) is a code cell's, read without building the turn."""
    return stored is not None and stored.get("kind") == "code"


def put(run: Run, turn: PendingTurn | None) -> None:
    run.pending_turn = None if turn is None else to_json(turn)
