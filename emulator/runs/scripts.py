"""The script queue: the turns a model call plays instead of the default model.

A model call takes the first pending turn (in the order they were added) whose `match` fits the run; a
`delay` turn adds its seconds to the call's latency and the call goes on to the next matching turn (or the
default model). Every consumed turn records which run took it and what the model was asked. A call that is
refused (a model rate limit) consumes nothing: the same turns answer the next call. Tests queue the turns
through the control plane (`emulator.control.scripts`).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import Any

from emulator.context import Ctx
from emulator.store import scripted_turns
from emulator.store.rows import Run, ScriptedTurn
from emulator.stub_model import FunctionCall, ModelRequest, ModelTurn


def fits(match: dict[str, Any], run: Run, request: ModelRequest) -> bool:
    if match.get("assistant_id") not in (None, run.assistant_id):
        return False
    if match.get("thread_id") not in (None, run.thread_id):
        return False
    wanted = match.get("metadata") or {}
    if any(run.metadata_.get(key) != value for key, value in wanted.items()):
        return False
    pattern = match.get("message_regex")
    return pattern is None or re.search(pattern, request.last_user_text) is not None


def to_model_turn(spec: dict[str, Any]) -> ModelTurn:
    kind = spec["type"]
    if kind == "text":
        return ModelTurn(text=spec["text"], chunk_size=spec.get("chunk_size"))
    if kind == "function_calls":
        calls = tuple(
            FunctionCall(
                name=call["name"],
                arguments=call["arguments"]
                if isinstance(call["arguments"], str)
                else json.dumps(call["arguments"], separators=(",", ":")),
            )
            for call in spec["calls"]
        )
        return ModelTurn(function_calls=calls)
    if kind == "failure":
        return ModelTurn(error=(spec["code"], spec["message"]))
    if kind == "incomplete":
        return ModelTurn(text=spec.get("text") or "", incomplete_reason=spec["reason"])
    if kind == "file_search":
        return ModelTurn(file_search_query=spec["query"])
    if kind == "code_interpreter":
        return ModelTurn(code=spec["code"])
    raise ValueError(f"turn type {kind!r} cannot be played by the model")


@dataclass(frozen=True)
class Pick:
    """What the script answers to one model call: a turn (None: the default model) and the delay before it."""

    turn: ModelTurn | None
    delay: float
    rows: tuple[ScriptedTurn, ...]
    """The pending turns this call plays (delays included), consumed only once the call goes ahead."""


def pick(ctx: Ctx, run: Run, request: ModelRequest) -> Pick:
    """The turns this model call would play: the tenant's own first, then the startup file's (`--script`)."""
    delay, rows = 0.0, []
    candidates = [
        *scripted_turns.pending(ctx.session, ctx.tenant, lock=True),
        *scripted_turns.pending_global(ctx.session, ctx.tenant),
    ]
    for row in candidates:
        if not fits(row.match, run, request):
            continue
        rows.append(row)
        if row.turn["type"] == "delay":
            delay += row.turn["seconds"]
            continue
        return Pick(to_model_turn(row.turn), delay, tuple(rows))
    return Pick(None, delay, tuple(rows))


def consume(ctx: Ctx, run: Run, chosen: Pick, snapshot: dict[str, Any]) -> None:
    """Record that `run` played the picked turns, with what the model was asked.

    A turn of the startup file is played by every tenant once: each tenant's playback is a consumed copy in
    that tenant's own rows (`scripted_turns.global_copy_id`), and the file's turn stays pending for the others.
    """
    for row in chosen.rows:
        if row.tenant == scripted_turns.GLOBAL_TENANT:
            scripted_turns.add(
                ctx.session,
                tenant=ctx.tenant,
                turn_id=scripted_turns.global_copy_id(row.id, ctx.tenant),
                now=row.created_at,
                match=row.match,
                turn=row.turn,
                consumed_at=ctx.now,
                consumed_by_run=run.id,
                request=snapshot,
            )
        else:
            row.consumed_at, row.consumed_by_run, row.request = ctx.now, run.id, snapshot


def request_snapshot(request: ModelRequest, prompt_tokens: int, dropped_messages: int) -> dict[str, Any]:
    return {**asdict(request), "prompt_tokens": prompt_tokens, "dropped_messages": dropped_messages}
