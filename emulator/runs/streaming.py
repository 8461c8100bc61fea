"""Drives a run for a streaming request, phase by phase, and yields its SSE bytes.

Each phase runs in its own unit of work (`lanes.run`: on the event loop's lane when it can); between phases nothing
is held. A stream that waits
(for its model's first token) waits on the process's hub (`runs.hub`) until its wait is over or the run
changes: a cancel from another request, here or on another replica, wakes it at once and the stream ends with
the cancel events; a deletion of its thread (which takes the run with it) ends it at once with an `error` event.
It costs no transaction while it waits.

The stream's lease keeps pollers and runners from advancing the run for as long as the stream lives: while it waits,
and while it writes to a client that reads slowly (its writes wait for the client: a phase's events may take any
time to go out). The lease lasts `limits.RUN_STREAM_LEASE_SECONDS` and is renewed for all of the process's streams
together by one timer (`runs.waiting`); were it renewed only while the stream waits, a slow client would let it
lapse between phases, a runner would move the run meanwhile, and the stream, which sends the events its own phases
produce, would miss them (it would end without the run's last events). It is dropped when the stream ends for any
reason, including a client that disconnects, after which a runner (or any poll) finishes the run; a stream whose
process dies leaves it to lapse within seconds, and a runner elsewhere takes the run over.

With an upstream model, the phase that makes the model call commits its claim and starts the call
(`upstream_turn.CallInFlight`, in a worker thread); the stream then waits for it on the event loop, holding no
worker thread, and
sends the run's live events meanwhile (`UpstreamModel.subscribe`), each fragment as it arrives. The next phase
begins with what the call left (`upstream_turn.after_call`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from emulator import lanes, sse
from emulator.context import Ctx
from emulator.errors import SERVER_ERROR_MESSAGE, NotFound
from emulator.runs import executor, hub, leases, outside, pending, phases, schedule, upstream_turn, wakeups
from emulator.runs.events import Event
from emulator.runs.upstream_model import Subscription, UpstreamModel
from emulator.server_state import Runtime
from emulator.store import runs as store

log = logging.getLogger("emulator.streaming")

@dataclass(frozen=True)
class _Phase:
    events: list[Event]
    resting: bool
    wait: float
    """Seconds until the model's answer is ready (its time to first token)."""
    delta_pause: float
    """Seconds between message deltas (the token rate)."""
    call: upstream_turn.CallInFlight | None = None
    """The upstream model call this phase started: the stream waits for it, then runs the next phase."""
    gone: bool = False
    """The run is no more: its thread was deleted."""


async def _phase(
    runtime: Runtime, tenant: str, run_id: str, include: frozenset[str], resumed: bool = False
) -> _Phase:
    """One phase of the run; `resumed`: the first after an upstream call the stream waited for."""
    attempts: list[Ctx] = []

    def work(session: Session) -> _Phase:
        ctx = Ctx(
            session=session, tenant=tenant, settings=runtime.settings, ids=runtime.ids, model=runtime.model,
            include=include, db=runtime.db,
        )
        attempts.append(ctx)
        run = store.get_by_id_thread_first(session, run_id)
        if run is None:
            return _Phase([], True, 0.0, 0.0, gone=True)
        leases.take(run)
        turn = pending.of(run)
        pause = 0.0 if turn is None else turn.timing.delta_pause
        before = run.pending_turn
        produced = upstream_turn.after_call(ctx, run, streaming=True) if resumed else None
        if produced is None:
            produced = phases.expire_if_due(ctx, run) or executor.advance_once(ctx, run, streaming=True)
        wait = executor.wait_seconds(ctx, run, streaming=True)
        # A turn that streamed in opened its step silently (its events went out live): it moved all the same.
        moved = bool(produced) or run.pending_turn != before
        resting = executor.is_resting(run) or (not moved and wait == 0)
        if resting:
            leases.drop(run)
        schedule.plan(ctx, run)
        return _Phase(produced, resting, wait, pause)

    try:
        phase = await lanes.run(runtime.db, work, write=True, shield=True)
    except upstream_turn.CallInFlight as call:  # its claim committed, the call started
        return _Phase([], False, 0.0, 0.0, call)
    attempts[-1].committed()  # the attempt that committed: a unit of work run again logs once
    return phase


async def _release(runtime: Runtime, run_id: str) -> None:
    """The stream's lease goes (a claim of work in flight keeps its own, renewed until the work ends)."""

    def work(session: Session) -> float | None:
        run = store.get_by_id(session, run_id)
        if run is None or run.unfinished_work is not None:
            return None
        leases.drop(run)
        return run.due_at

    due_at = await lanes.run(runtime.db, work, write=True, shield=True)
    if due_at is not None:  # a client that went away: a runner finishes the run
        wakeups.ring(due_at)


async def _fail(runtime: Runtime, tenant: str, run_id: str, include: frozenset[str]) -> list[Event]:
    attempts: list[Ctx] = []

    def work(session: Session) -> list[Event]:
        ctx = Ctx(
            session=session, tenant=tenant, settings=runtime.settings, ids=runtime.ids, model=runtime.model,
            include=include,
        )
        attempts.append(ctx)
        run = store.get_by_id_thread_first(session, run_id)
        if run is None or executor.is_resting(run):
            return []
        return phases.fail(ctx, run, "server_error", SERVER_ERROR_MESSAGE)

    failed = await lanes.run(runtime.db, work, write=True, shield=True)
    if attempts:
        attempts[-1].committed()
    return failed


_renewing: set[asyncio.Future[None]] = set()
"""Claims being renewed until their calls end (held here: a task nobody holds may be collected)."""


async def _during(
    call: upstream_turn.CallInFlight, watching: Subscription, lapse: Callable[[], None], gone: asyncio.Event
) -> AsyncIterator[bytes]:
    """The run's live events, encoded, until its upstream call ends. The call's claim is renewed until then, whether or
    not this stream is still there to see it; if it is not (`gone`), the claim lapses once the call has ended,
    for whoever reads the run next to record the kept answer."""
    ended = asyncio.wrap_future(call.call)
    ended.add_done_callback(lambda _ended: watching.put_nowait(None))
    renewing = asyncio.ensure_future(_renew_until(ended, call.renew, lapse, gone))
    _renewing.add(renewing)
    renewing.add_done_callback(_renewing.discard)
    ended_here = False
    while not ended_here:
        events = await watching.take_all()  # what came together goes out in one write (a loaded server writes less)
        ended_here = events[-1] is None
        yield b"".join(sse.encode(event.name, event.data) for event in events if event is not None)


async def _renew_until(
    ended: asyncio.Future[Any], renew: Callable[[], None], lapse: Callable[[], None], gone: asyncio.Event
) -> None:
    while True:
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(ended), outside.RENEW_EVERY_SECONDS)
        if ended.done():
            break
        await run_in_threadpool(renew)
    if gone.is_set():
        await run_in_threadpool(lapse)


def _gone(thread_id: str) -> bytes:
    """The end of a stream whose run was deleted with its thread: no terminal event of the run can come, so the
    stream says why it ends, as the thread's own routes now answer (404), in an `error` event (the SDKs raise it)
    rather than ending without the run's final event (which the Node SDK reports as "Final run has not been
    received")."""
    return sse.encode_error(NotFound.object("thread", thread_id).body())


async def drive(
    runtime: Runtime, tenant: str, run_id: str, thread_id: str, opening: Sequence[Event],
    include: frozenset[str] = frozenset(),
) -> AsyncIterator[bytes]:
    model = runtime.model
    watching = model.subscribe(run_id) if isinstance(model, UpstreamModel) else None
    gone = asyncio.Event()
    try:
        with contextlib.ExitStack() as subscribed:
            subscribed.enter_context(runtime.waiting.holding(run_id))
            for event in opening:
                yield sse.encode(event.name, event.data)
            changes: hub.Subscription | None = None
            resumed = False
            while True:
                phase = await _phase(runtime, tenant, run_id, include, resumed)
                resumed = False
                if phase.call is not None and watching is not None:
                    lapse = functools.partial(outside.lapse, runtime.db, run_id)
                    async for live in _during(phase.call, watching, lapse, gone):
                        if live:
                            yield live
                    resumed = True
                    continue
                for event in phase.events:
                    if phase.delta_pause and event.name == "thread.message.delta":
                        await anyio.sleep(phase.delta_pause)
                    yield sse.encode(event.name, event.data)
                if phase.gone:
                    yield _gone(thread_id)
                if phase.resting:
                    break
                if not phase.wait:
                    continue
                if changes is None:  # subscribed from now on: a look again sees what changed before
                    changes = subscribed.enter_context(runtime.hub.subscribe(run_id))
                    continue
                await changes.wait(phase.wait)
    except Exception:
        log.exception("stream of run %s failed", run_id)
        for event in await _fail(runtime, tenant, run_id, include):
            yield sse.encode(event.name, event.data)
        yield sse.encode_error({"error": {"message": SERVER_ERROR_MESSAGE, "type": "server_error", "param": None,
                                          "code": "server_error"}})
    finally:
        gone.set()
        if isinstance(model, UpstreamModel) and watching is not None:
            model.unsubscribe(run_id, watching)
        with anyio.CancelScope(shield=True):
            await _release(runtime, run_id)
    yield sse.DONE
