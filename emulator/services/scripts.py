"""Scripted model turns: a tenant queues turns that the model plays instead of its default.

A model call takes the first pending turn (in the order they were added) whose `match` fits the run; a
`delay` turn adds its seconds to the call's latency and the call goes on to the next matching turn (or the
default model). Every consumed turn records which run took it and what the model was asked. A call that is
refused (a model rate limit) consumes nothing: the same turns answer the next call.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from emulator.context import Ctx
from emulator.schemas.control import AddTurns
from emulator.store import control as store
from emulator.store.rows import Run, ScriptedTurn
from emulator.stub_model import FunctionCall, ModelRequest, ModelTurn
from emulator.tables import ScriptedTurnRow

GLOBAL_TENANT = "*"
"""Turns loaded at startup (`--script FILE`) play for every tenant (each once), after each tenant's own turns."""


def add(ctx: Ctx, body: AddTurns) -> list[ScriptedTurnRow]:
    rows = []
    for turn in body.turns:
        spec = turn.model_dump(exclude={"match"}, exclude_none=True)
        match = turn.match.model_dump(exclude_none=True) if turn.match else {}
        rows.append(
            store.add_turn(
                ctx.session, tenant=ctx.tenant, turn_id=ctx.ids.new("turn"), now=ctx.now, match=match, turn=spec
            )
        )
    return rows


def render(row: ScriptedTurnRow | ScriptedTurn) -> dict[str, Any]:
    return {
        "id": row.id,
        "object": "emulator.scripted_turn",
        "created_at": row.created_at,
        "match": row.match,
        "turn": row.turn,
        "consumed_at": row.consumed_at,
        "run_id": row.consumed_by_run,
        "request": row.request,
    }


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
        *store.pending_turns(ctx.session, ctx.tenant, lock=True),
        *store.pending_global_turns(ctx.session, GLOBAL_TENANT, ctx.tenant),
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
    that tenant's own rows (id `<file turn id>.<tenant>`), and the file's turn stays pending for the others.
    """
    for row in chosen.rows:
        if row.tenant == GLOBAL_TENANT:
            store.add_turn(
                ctx.session,
                tenant=ctx.tenant,
                turn_id=store.global_copy_id(row.id, ctx.tenant),
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


def load_file(session: Session, path: Path, now: int) -> int:
    """Load `{"turns": [...]}` (JSON, or YAML for .yaml/.yml) as turns of every tenant; returns how many.

    Ids derive from the file's content, so replicas that load the same file at start add each turn once.
    """
    raw = path.read_text()
    data = yaml.safe_load(raw) if path.suffix in (".yaml", ".yml") else json.loads(raw)
    body = AddTurns.model_validate(data)
    digest = hashlib.sha256(raw.encode()).hexdigest()
    added = 0
    for index, turn in enumerate(body.turns):
        turn_id = f"turn_{digest[:16]}{index:08d}"
        if session.scalar(select(ScriptedTurnRow.id).where(ScriptedTurnRow.id == turn_id)) is not None:
            continue
        store.add_turn(
            session,
            tenant=GLOBAL_TENANT,
            turn_id=turn_id,
            now=now,
            match=turn.match.model_dump(exclude_none=True) if turn.match else {},
            turn=turn.model_dump(exclude={"match"}, exclude_none=True),
        )
        added += 1
    return added
