"""Drives a run for a streaming request, phase by phase, and yields its SSE bytes.

Each phase runs in its own transaction in the thread pool; between phases nothing is held. A stream that waits
(for its model's first token) waits on the process's hub (`runs.hub`) until its wait is over or the run
changes: a cancel from another request, here or on another replica, wakes it at once and the stream ends with
the cancel events. It costs no transaction while it waits. The stream's lease keeps pollers from advancing the
run meanwhile (renewed for all waiting streams together, `runs.waiting`); it is dropped when the
stream ends for any reason, including a client that disconnects, after which any poll finishes the run.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import anyio
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from emulator import sse
from emulator.context import Ctx
from emulator.errors import SERVER_ERROR_MESSAGE
from emulator.runs import executor, leases, pending, phases
from emulator.runs.events import Event
from emulator.runs.hub import Subscription
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


def _phase(runtime: Runtime, tenant: str, run_id: str, include: frozenset[str]) -> _Phase:
    attempts: list[Ctx] = []

    def work(session: Session) -> _Phase:
        ctx = Ctx(
            session=session, tenant=tenant, settings=runtime.settings, ids=runtime.ids, model=runtime.model,
            include=include,
        )
        attempts.append(ctx)
        run = store.get_by_id_thread_first(session, run_id)
        if run is None:
            return _Phase([], True, 0.0, 0.0)
        leases.take(run)
        turn = pending.of(run)
        pause = 0.0 if turn is None else turn.timing.delta_pause
        produced = phases.expire_if_due(ctx, run) or executor.advance_once(ctx, run, streaming=True)
        wait = executor.wait_seconds(ctx, run, streaming=True)
        resting = executor.is_resting(run) or (not produced and wait == 0)
        if resting:
            leases.drop(run)
        return _Phase(produced, resting, wait, pause)

    phase = runtime.db.run_in_worker(work, write=True)
    attempts[-1].committed()  # the attempt that committed: a unit of work run again logs once
    return phase


def _release(runtime: Runtime, run_id: str) -> None:
    with runtime.db.transaction() as session:
        run = store.get_by_id(session, run_id)
        if run is not None:
            leases.drop(run)


def _fail(runtime: Runtime, tenant: str, run_id: str, include: frozenset[str]) -> list[Event]:
    with runtime.db.transaction() as session:
        ctx = Ctx(
            session=session, tenant=tenant, settings=runtime.settings, ids=runtime.ids, model=runtime.model,
            include=include,
        )
        run = store.get_by_id_thread_first(session, run_id)
        if run is None or executor.is_resting(run):
            return []
        failed = phases.fail(ctx, run, "server_error", SERVER_ERROR_MESSAGE)
    ctx.committed()
    return failed


async def drive(
    runtime: Runtime, tenant: str, run_id: str, opening: Sequence[Event], include: frozenset[str] = frozenset()
) -> AsyncIterator[bytes]:
    try:
        for event in opening:
            yield sse.encode(event.name, event.data)
        with contextlib.ExitStack() as subscribed:
            changes: Subscription | None = None
            while True:
                phase = await run_in_threadpool(_phase, runtime, tenant, run_id, include)
                for event in phase.events:
                    if phase.delta_pause and event.name == "thread.message.delta":
                        await anyio.sleep(phase.delta_pause)
                    yield sse.encode(event.name, event.data)
                if phase.resting:
                    break
                if not phase.wait:
                    continue
                if changes is None:  # subscribed from now on: a look again sees what changed before
                    changes = subscribed.enter_context(runtime.hub.subscribe(run_id))
                    continue
                with runtime.waiting.waiting(run_id):
                    await changes.wait(phase.wait)
    except Exception:
        log.exception("stream of run %s failed", run_id)
        for event in await run_in_threadpool(_fail, runtime, tenant, run_id, include):
            yield sse.encode(event.name, event.data)
        yield sse.encode_error({"error": {"message": SERVER_ERROR_MESSAGE, "type": "server_error", "param": None,
                                          "code": "server_error"}})
    finally:
        with anyio.CancelScope(shield=True):
            await run_in_threadpool(_release, runtime, run_id)
    yield sse.DONE
