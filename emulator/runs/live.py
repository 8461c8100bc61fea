"""A turn as the upstream generates it: its step opens at the first fragment that says what kind of turn it is,
each fragment reaches the run's streams in this process at once, and the text so far is readable in the database.

The upstream call (a task on the event loop, `upstream_model`) hands each delta to the run's `LiveTurn`:

    kind = live.deciding(delta)          # "text" / "tool_calls" / "built_in" when this delta decides (else None)
    events = live.open(kind)             # in a worker thread: a short transaction opens the step (and message)
    events = live.take(delta)            # the delta as stream events (`thread.message.delta`, `...step.delta`)

A text turn's message is `in_progress` while it grows; one writer per process (`Flusher`) writes the text so far
of every message being generated every `FLUSH_SECONDS`, in one short transaction that also notices runs that
stopped being `in_progress` meanwhile (a cancel on another replica) so that their calls end. Once the turn has
ended, the run's unit of work records it (`upstream_turn`, `model_call`) on the step and message already open.

A text that turns into tool calls (some models say a sentence first) completes its message, as the hosted API
did, before the tool calls' step opens. Built-in tools (file_search, code_interpreter) open nothing here: their
step is the run's own, as with the stub.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from emulator import tokens
from emulator.context import Ctx
from emulator.db import Database
from emulator.ids import IdFactory
from emulator.runs import events, phases
from emulator.runs.events import Event
from emulator.runs.state import RunStatus, StepStatus
from emulator.schemas.messages import text_part
from emulator.settings import Settings
from emulator.store import messages as message_store
from emulator.store import runs as store
from emulator.store.rows import Run
from emulator.upstream.deltas import Delta, TextDelta, ToolCallDelta
from emulator.upstream.request import BUILT_IN_NAMES

log = logging.getLogger("emulator.runs")

FLUSH_SECONDS = 0.25
"""How often the text so far of a message being generated is written (and a cancel elsewhere noticed), at most."""
FLUSH_SHARE = 0.2
"""The share of the time the writer may take: after a write that took t seconds it waits at least
t * (1 / FLUSH_SHARE - 1). Each write holds the whole text so far of every message being generated, which grows
with the answers (a thousand long answers are megabytes a write): under that load the text so far is written less
often, rather than the writer taking the process."""

Kind = Literal["text", "tool_calls", "built_in"]


class RunMoved(Exception):
    """The run was no longer `in_progress` when its step was to open (cancelled, expired): the call ends."""


@dataclass
class LiveCall:
    id: str
    """The emulator's call id (the upstream's is not shown)."""
    name: str
    arguments: list[str] = field(default_factory=list)


@dataclass
class LiveTurn:
    run_id: str
    tenant: str
    db: Database
    settings: Settings
    ids: IdFactory
    kind: Kind | None = None
    step_id: str | None = None
    message_id: str | None = None
    text: list[str] = field(default_factory=list)
    calls: dict[int, LiveCall] = field(default_factory=dict)
    dirty: bool = False
    """Text came since the message was last written."""
    _first_text: bool = True

    @classmethod
    def of(cls, ctx: Ctx, run: Run) -> LiveTurn:
        if ctx.db is None:
            raise RuntimeError("a live turn writes in transactions of its own: its Ctx needs the database")
        return cls(run.id, run.tenant, ctx.db, ctx.settings, ctx.ids)

    @property
    def text_so_far(self) -> str:
        return "".join(self.text)

    @property
    def opened_message(self) -> str | None:
        """The id of the message this turn opened and still writes (None once it turned into tool calls)."""
        return self.message_id if self.kind == "text" else None

    @property
    def opened_calls(self) -> str | None:
        """The id of the function calls' step this turn opened."""
        return self.step_id if self.kind == "tool_calls" else None

    def generated_tokens(self, encoding: str) -> int:
        """What the upstream generated until now, counted here (for a turn cut short without a usage report)."""
        if self.kind == "tool_calls":
            return sum(tokens.count(call.name + "".join(call.arguments), encoding) for call in self.calls.values())
        return tokens.count(self.text_so_far, encoding)

    def deciding(self, delta: Delta) -> Kind | None:
        """The kind of turn `delta` opens (or turns a text into), None when it opens nothing."""
        if isinstance(delta, TextDelta):
            return "text" if self.kind is None and delta.text.strip() else None
        if not isinstance(delta, ToolCallDelta) or self.kind not in (None, "text") or not delta.name:
            return None
        return "built_in" if delta.name in BUILT_IN_NAMES else "tool_calls"

    def open(self, kind: Kind) -> list[Event]:
        """Open the turn's step (and message) in a transaction of its own (a worker thread: it blocks)."""
        with self.db.transaction() as session:
            ctx = Ctx(session=session, tenant=self.tenant, settings=self.settings, ids=self.ids, db=self.db)
            run = store.get_by_id_thread_first(session, self.run_id)
            if run is None or run.status != RunStatus.IN_PROGRESS or run.pending_turn is not None:
                raise RunMoved(self.run_id)
            produced = self._end_text(ctx, run) if self.kind == "text" else []
            if kind == "text":
                produced += self._open_message(ctx, run)
            elif kind == "tool_calls":
                produced += self._open_calls(ctx, run)
        ctx.committed()
        self.kind = kind
        return produced

    def _open_message(self, ctx: Ctx, run: Run) -> list[Event]:
        step, message = phases.new_message_step(ctx, run)
        self.step_id, self.message_id = step.id, message.id
        return [events.step("created", step, frozenset()), events.step("in_progress", step, frozenset()),
                events.message("created", message), events.message("in_progress", message)]

    def _open_calls(self, ctx: Ctx, run: Run) -> list[Event]:
        step = phases.new_step(ctx, run, "tool_calls", {"type": "tool_calls", "tool_calls": []})
        self.step_id = step.id
        return [events.step("created", step, frozenset()), events.step("in_progress", step, frozenset())]

    def _end_text(self, ctx: Ctx, run: Run) -> list[Event]:
        """The text said before the tool calls: its message and step complete, as they are."""
        assert self.message_id is not None and self.step_id is not None
        message = message_store.get(ctx.session, run.tenant, run.thread_id, self.message_id)
        message.content = [text_part(self.text_so_far)]
        phases.end_message(ctx, message)
        step = store.get_step(ctx.session, run.id, self.step_id)
        phases.move_step(ctx, step, StepStatus.COMPLETED)
        self.message_id = self.step_id = None
        return [events.message("completed", message), events.step("completed", step, frozenset())]

    def take(self, delta: Delta) -> list[Event]:
        """`delta` added to the turn, as the events that show it to a stream (none when it shows nothing)."""
        if isinstance(delta, TextDelta):
            self.text.append(delta.text)
            if self.kind != "text" or self.message_id is None:
                return []
            self.dirty = True
            first, self._first_text = self._first_text, False
            return [events.message_delta(self.message_id, delta.text, first=first)]
        if not isinstance(delta, ToolCallDelta) or self.kind != "tool_calls" or self.step_id is None:
            return []
        call = self.calls.get(delta.index)
        if call is None:
            closed = self.close_calls()
            call = self.calls[delta.index] = LiveCall(self.ids.new("call"), delta.name or "")
            call.arguments.append(delta.arguments)
            shown: dict[str, Any] = {"id": call.id, "type": "function",
                                     "function": {"name": call.name, "arguments": delta.arguments, "output": None}}
            return [*closed, events.tool_call_delta(self.step_id, delta.index, shown)]
        call.name = call.name or (delta.name or "")
        call.arguments.append(delta.arguments)
        if not delta.arguments:
            return []
        return [events.tool_call_delta(self.step_id, delta.index,
                                       {"type": "function", "function": {"arguments": delta.arguments}})]

    def call_ids(self) -> list[str]:
        return [self.calls[index].id for index in sorted(self.calls)]

    def close_calls(self) -> list[Event]:
        """The `{}` of the calls so far that the upstream wrote no arguments for: their arguments on record
        (`upstream.deltas.complete_arguments`), so that the fragments a client adds up are those. Sent before the
        next call's first fragment (the SDKs take a call as done when the next begins; upstreams send their calls
        one after the other), and for the last once the turn has ended."""
        if self.step_id is None:
            return []
        closing = []
        for index in sorted(self.calls):
            call = self.calls[index]
            if not "".join(call.arguments).strip():
                call.arguments.append("{}")
                closing.append(events.tool_call_delta(self.step_id, index,
                                                      {"type": "function", "function": {"arguments": "{}"}}))
        return closing

    def write_text(self, ctx: Ctx, run: Run) -> None:
        """The message shows every fragment received (the writer may be one interval behind)."""
        if self.opened_message is None:
            return
        message = store.open_message(ctx.session, run.id)
        if message is not None and message.id == self.message_id:
            message.content = [text_part(self.text_so_far)]


class Flusher:
    """One per process: writes the text so far of the messages being generated, and ends the calls of runs that
    moved on elsewhere (`abort`), every `FLUSH_SECONDS` while any turn is live."""

    def __init__(self, abort: Callable[[str], None]) -> None:
        self._abort = abort
        self._turns: dict[str, LiveTurn] = {}
        self._task: asyncio.Task[None] | None = None

    def add(self, live: LiveTurn) -> None:
        self._turns[live.run_id] = live
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    def remove(self, run_id: str) -> None:
        self._turns.pop(run_id, None)

    async def _run(self) -> None:
        took = 0.0
        while self._turns:
            await asyncio.sleep(max(FLUSH_SECONDS, took * (1 / FLUSH_SHARE - 1)))
            started = time.monotonic()
            turns = list(self._turns.values())
            if not turns:
                return
            contents = {}
            for live in turns:
                if live.dirty and live.opened_message is not None:
                    contents[live.opened_message] = [text_part(live.text_so_far)]
                    live.dirty = False
            try:
                moved = await asyncio.to_thread(_write, turns[0].db, contents, [live.run_id for live in turns])
                took = time.monotonic() - started
            except Exception:  # the next interval writes again; the turn's end writes everything anyway
                log.warning("the text of %d messages being generated could not be written", len(contents),
                            exc_info=True)
                continue
            for run_id in moved:
                if run_id in self._turns:
                    log.info("run %s moved on while the upstream answered: its call ends", run_id)
                    self._abort(run_id)


def _write(db: Database, contents: dict[str, list[dict[str, Any]]], run_ids: list[str]) -> set[str]:
    with db.transaction(write=bool(contents)) as session:
        message_store.write_growing(session, contents)
        return store.moving_on(session, run_ids)
