"""Scripted model turns, the control plane's side: a tenant queues turns (`/_emulator/script`) that its model
calls play instead of the default model (`emulator.runs.scripts`), lists them, played or not, and clears them;
the server may load turns for every tenant from a file at start (`--script`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.orm import Session

from emulator.context import Ctx
from emulator.schemas.control import AddTurns, ScriptTurn
from emulator.store import scripted_turns
from emulator.store.rows import ScriptedTurn


def _stored(turn: ScriptTurn) -> dict[str, Any]:
    """A turn as its row holds it: its `match` (empty: any call) apart from the rest."""
    return {
        "match": turn.match.model_dump(exclude_none=True) if turn.match else {},
        "turn": turn.model_dump(exclude={"match"}, exclude_none=True),
    }


def add(ctx: Ctx, body: AddTurns) -> list[ScriptedTurn]:
    return [
        scripted_turns.add(ctx.session, tenant=ctx.tenant, turn_id=ctx.ids.new("turn"), now=ctx.now, **_stored(turn))
        for turn in body.turns
    ]


def pending(ctx: Ctx) -> list[ScriptedTurn]:
    return scripted_turns.pending(ctx.session, ctx.tenant)


def consumed(ctx: Ctx) -> list[ScriptedTurn]:
    return scripted_turns.consumed(ctx.session, ctx.tenant)


def clear(ctx: Ctx) -> int:
    """Delete the turns not played yet; returns how many."""
    return scripted_turns.clear_pending(ctx.session, ctx.tenant)


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
        if scripted_turns.exists(session, turn_id):
            continue
        scripted_turns.add(session, tenant=scripted_turns.GLOBAL_TENANT, turn_id=turn_id, now=now, **_stored(turn))
        added += 1
    return added
