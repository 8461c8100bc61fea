"""Drives a run for a streaming request, phase by phase, and yields its SSE bytes.

Each phase runs in its own transaction in the thread pool; between phases nothing is held, so a cancel from
another request (or replica) is seen at the next phase and the stream ends with the cancel events. The
stream's lease keeps pollers from advancing the run meanwhile; it is dropped when the stream ends for any
reason, including a client that disconnects, after which any poll finishes the run.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence

import anyio
from fastapi.concurrency import run_in_threadpool

from emulator import sse
from emulator.context import Ctx
from emulator.runs import executor
from emulator.runs.events import Event
from emulator.services.runtime import Runtime
from emulator.store import runs as store

log = logging.getLogger("emulator.streaming")

_SERVER_ERROR = "The server had an error while processing your request. Sorry about that!"


def _phase(runtime: Runtime, tenant: str, run_id: str) -> tuple[list[Event], bool, bool]:
    """Run one phase; returns its events, whether the run now rests, and whether a model call comes next."""
    with runtime.db.transaction() as session:
        ctx = Ctx(session=session, tenant=tenant, settings=runtime.settings, ids=runtime.ids, model=runtime.model)
        run = store.get_by_id(session, run_id, lock=True)
        if run is None:
            return [], True, False
        executor.take_lease(run)
        produced = executor.expire_if_due(ctx, run) or executor.advance_once(ctx, run)
        resting = executor.is_resting(run) or not produced
        if resting:
            executor.drop_lease(run)
        return produced, resting, executor.model_call_next(run)


def _release(runtime: Runtime, run_id: str) -> None:
    with runtime.db.transaction() as session:
        run = store.get_by_id(session, run_id, lock=True)
        if run is not None:
            executor.drop_lease(run)


def _fail(runtime: Runtime, tenant: str, run_id: str) -> list[Event]:
    with runtime.db.transaction() as session:
        ctx = Ctx(session=session, tenant=tenant, settings=runtime.settings, ids=runtime.ids, model=runtime.model)
        run = store.get_by_id(session, run_id, lock=True)
        if run is None or executor.is_resting(run):
            return []
        return executor.fail(ctx, run, "server_error", _SERVER_ERROR)


async def drive(runtime: Runtime, tenant: str, run_id: str, opening: Sequence[Event]) -> AsyncIterator[bytes]:
    try:
        for event in opening:
            yield sse.encode(event.name, event.data)
        settings = runtime.settings
        delta_pause = 1 / settings.latency_tokens_per_second if settings.latency_tokens_per_second else 0.0
        resting = False
        while not resting:
            produced, resting, model_call_next = await run_in_threadpool(_phase, runtime, tenant, run_id)
            for event in produced:
                if delta_pause and event.name == "thread.message.delta":
                    await anyio.sleep(delta_pause)
                yield sse.encode(event.name, event.data)
            if model_call_next and settings.latency_ttft_ms:
                await anyio.sleep(settings.latency_ttft_ms / 1000)
    except Exception:
        log.exception("stream of run %s failed", run_id)
        for event in await run_in_threadpool(_fail, runtime, tenant, run_id):
            yield sse.encode(event.name, event.data)
        yield sse.encode_error({"error": {"message": _SERVER_ERROR, "type": "server_error", "param": None,
                                          "code": "server_error"}})
    finally:
        with anyio.CancelScope(shield=True):
            await run_in_threadpool(_release, runtime, run_id)
    yield sse.DONE
