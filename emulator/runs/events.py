"""Stream events of a run, built from rows: the snapshots the executor emits as it moves a run."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from emulator.schemas.messages import render_message
from emulator.schemas.runs import render_run, render_step
from emulator.schemas.threads import render_thread
from emulator.store.rows import Message, Run, RunStep, Thread

_WORD = re.compile(r"\s*\S+|\s+$")
"""A word with the space before it (trailing space alone): a message delta when the turn sets no chunk size."""


@dataclass(frozen=True)
class Event:
    name: str
    data: dict[str, Any]


def thread_created(row: Thread) -> Event:
    return Event("thread.created", render_thread(row))


def run_created(row: Run) -> Event:
    return Event("thread.run.created", render_run(row))


def run_status(row: Run) -> Event:
    """`thread.run.<status>`: queued, in_progress, requires_action, cancelling and every terminal status."""
    return Event(f"thread.run.{row.status}", render_run(row))


def step(kind: str, row: RunStep, include: frozenset[str]) -> Event:
    return Event(f"thread.run.step.{kind}", render_step(row, include))


def message(kind: str, row: Message) -> Event:
    return Event(f"thread.message.{kind}", render_message(row))


def message_delta(
    message_id: str, value: str, *, first: bool, annotations: list[dict[str, Any]] | None = None
) -> Event:
    """A piece of a message's text; the first piece opens `annotations`, later ones add those they complete."""
    text: dict[str, Any] = {"value": value}
    if first or annotations:
        text["annotations"] = annotations or []
    return Event(
        "thread.message.delta",
        {"id": message_id, "object": "thread.message.delta",
         "delta": {"content": [{"index": 0, "type": "text", "text": text}]}},
    )


def content_delta(message_id: str, index: int, part: dict[str, Any]) -> Event:
    """A whole non-text content part of a message (an image) as one delta."""
    return Event(
        "thread.message.delta",
        {"id": message_id, "object": "thread.message.delta", "delta": {"content": [{"index": index, **part}]}},
    )


def tool_call_delta(step_id: str, index: int, call: dict[str, Any]) -> Event:
    """A tool call's first (and here only) delta: id, type and name come once, arguments whole."""
    return Event(
        "thread.run.step.delta",
        {"id": step_id, "object": "thread.run.step.delta",
         "delta": {"step_details": {"type": "tool_calls", "tool_calls": [{"index": index, **call}]}}},
    )


def chunks(text: str, size: int | None) -> list[str]:
    """The pieces of `text` that its message deltas carry: `size` characters each, or a word each."""
    pieces = [text[i : i + size] for i in range(0, len(text), size)] if size else _WORD.findall(text)
    return pieces or [text]


def text_deltas(message_id: str, pieces: list[str], annotations: list[dict[str, Any]]) -> list[Event]:
    """One delta per piece; each annotation (numbered in `annotations`' order) rides on the delta in which
    its marker ends."""
    produced = []
    offset = 0
    for index, piece in enumerate(pieces):
        offset += len(piece)
        completed = [
            {"index": number, **annotation}
            for number, annotation in enumerate(annotations)
            if offset - len(piece) < annotation["end_index"] <= offset
        ]
        produced.append(message_delta(message_id, piece, first=index == 0, annotations=completed))
    return produced


def numbered(annotations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Annotations as a delta carries them: each with its index in the message's text part."""
    return [{"index": number, **annotation} for number, annotation in enumerate(annotations)]
