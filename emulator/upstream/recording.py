"""Record upstream turns as scripted turns (`--record FILE`), so that `--script FILE` replays them offline.

Each turn is written as `--script` loads it (`{"turns": [...]}`, JSON, or YAML for `.yaml`/`.yml`), with a
`match` that replays it on the same conversation: `message_regex` anchored on the whole last user message
(`\\A…\\Z`, escaped). That is the tightest condition that survives a replay: the match rules also allow
`assistant_id`, `thread_id` and run `metadata`, but a replay creates new assistants and threads with new ids
(pass `assistant_id` only when ids are reproducible, e.g. a server started with `--seed` and the same requests).
Turns that answer the same message (a function call, then the answer after its outputs) replay in the order
they were recorded, since a model call plays the first pending turn that fits.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
from pathlib import Path
from typing import Any

import yaml

from emulator.upstream.deltas import FinishedTurn
from emulator.upstream.errors import UpstreamError
from emulator.upstream.request import CODE_INTERPRETER, FILE_SEARCH, TurnRequest

_BUILT_IN_PARAMETER = {FILE_SEARCH: "query", CODE_INTERPRETER: "code"}


def scripted_turn(turn: FinishedTurn) -> dict[str, Any]:
    """The scripted turn (without `match`) that plays `turn` again.

    ValueError for what one scripted turn cannot say: a built-in called together with other tools, or a
    built-in's argument missing.
    """
    calls = turn.tool_calls
    built_ins = [call for call in calls if call.name in _BUILT_IN_PARAMETER]
    if built_ins:
        call = built_ins[0]
        if len(calls) > 1:
            names = ", ".join(call.name for call in calls)
            raise ValueError(f"a scripted turn plays one built-in tool call alone, not these together: {names}")
        parameter = _BUILT_IN_PARAMETER[call.name]
        value = call.parsed.get(parameter)
        if not isinstance(value, str):
            raise ValueError(f"the {call.name} call has no string {parameter!r} argument: {call.arguments}")
        return {"type": call.name, parameter: value}
    if calls:
        return {"type": "function_calls", "calls": [{"name": call.name, "arguments": call.parsed} for call in calls]}
    if turn.finish_reason == "length":
        return {"type": "incomplete", "reason": "max_completion_tokens", "text": turn.text}
    return {"type": "text", "text": turn.text}


def failure_turn(error: UpstreamError) -> dict[str, Any]:
    """The scripted turn that fails a run the way `error` did."""
    return {"type": "failure", "code": error.code, "message": error.message}


def replay_match(
    last_user_text: str,
    *,
    assistant_id: str | None = None,
    thread_id: str | None = None,
    metadata: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The `match` of a recorded turn: the whole last user message, and the ids and metadata given."""
    match: dict[str, Any] = {"message_regex": rf"\A{re.escape(last_user_text)}\Z"}
    if assistant_id is not None:
        match["assistant_id"] = assistant_id
    if thread_id is not None:
        match["thread_id"] = thread_id
    if metadata:
        match["metadata"] = dict(metadata)
    return match


def _is_yaml(path: Path) -> bool:
    return path.suffix in (".yaml", ".yml")


def _read_turns(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    raw = path.read_text()
    if not raw.strip():
        return []
    try:
        data = yaml.safe_load(raw) if _is_yaml(path) else json.loads(raw)
    except (ValueError, yaml.YAMLError) as exc:
        raise ValueError(f"{path} is not a file of scripted turns, not appending to it: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("turns"), list):
        raise ValueError(f'{path} is not a file of scripted turns ({{"turns": [...]}}), not appending to it')
    return list(data["turns"])


class Recorder:
    """Appends turns to one file; the file is whole and loadable after every append.

    Each append rewrites the file through a temporary file in the same folder and an atomic rename, so a reader
    (or a crash) never sees half a file. One Recorder per file in a process (appends from several threads are
    serialized); two processes recording into the same file would lose each other's turns.
    """

    def __init__(self, path: Path) -> None:
        self.path = path.expanduser().resolve()
        self._lock = threading.Lock()
        self._turns = _read_turns(self.path)

    def __len__(self) -> int:
        return len(self._turns)

    def append(self, turn: dict[str, Any], match: dict[str, Any]) -> None:
        with self._lock:
            self._turns.append({**turn, "match": match})
            self._write()

    def record(
        self, request: TurnRequest, outcome: FinishedTurn | UpstreamError, *, assistant_id: str | None = None
    ) -> dict[str, Any]:
        """Append what the upstream answered to `request` (a turn, or the error it failed with); returns the
        scripted turn written."""
        turn = failure_turn(outcome) if isinstance(outcome, UpstreamError) else scripted_turn(outcome)
        match = replay_match(request.last_user_text, assistant_id=assistant_id)
        self.append(turn, match)
        return {**turn, "match": match}

    def _write(self) -> None:
        document = {"turns": self._turns}
        if _is_yaml(self.path):
            text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
        else:
            text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        mode = self.path.stat().st_mode & 0o777 if self.path.exists() else 0o644
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        try:
            os.fchmod(handle, mode)
            with os.fdopen(handle, "w") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
