"""The runner: in each server process, a task that advances the runs nobody watches.

A run is due (`runs.due_at`, set by `schedule.plan`) when it can move without a client: a queued run at once,
a run whose model answer is ready at the answer's time, an upstream model call at once. The runner claims due
runs that no stream or work holds, in the database (`store.runs.claim_due`: one statement, rows another
replica is claiming skipped), so several replicas share the work and none takes a run another holds; the claim
pushes `due_at` a few seconds on, and a runner that dies leaves its runs due again after that.

Each claimed run is settled in one unit of work in a worker thread (`safety.advance`, `executor.settle`): what
a read under the `immediate` policy would do, so a client sees the same run, only sooner. An upstream model
call, which reads leave to the runner, holds one of the runner's threads while the upstream answers.

The runner is woken by this process's units of work that make a run due (`schedule.listen`), at the time a
run becomes due, and every `RUNNER_SWEEP_SECONDS` to sweep the index for runs made due elsewhere or left by a
process that died.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time

import anyio
import anyio.to_thread
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from emulator import limits
from emulator.context import Ctx
from emulator.runs import safety, schedule
from emulator.server_state import Runtime
from emulator.store import runs as store

log = logging.getLogger("emulator.runner")


class Runner:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._wake = asyncio.Event()
        self._rung = False
        self._threads = anyio.CapacityLimiter(limits.RUNNER_BATCH)
        self._advancing: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def due(self, due_at: float) -> None:
        """A run is due at `due_at` (wall seconds): wake the runner then. Called from any thread."""
        delay = due_at - time.time()
        if delay > 0:
            self._loop.call_soon_threadsafe(self._loop.call_later, delay, self._ring)
        elif not self._rung:
            if threading.get_ident() == self._loop_thread:
                self._ring()
            else:
                self._rung = True
                self._loop.call_soon_threadsafe(self._ring)

    def _ring(self) -> None:
        self._rung = True
        self._wake.set()

    async def run_forever(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), limits.RUNNER_SWEEP_SECONDS)
            self._wake.clear()
            self._rung = False
            try:
                await self._claim_round()
            except Exception:  # the database may be away for a moment: the next round tries again
                log.exception("the runner could not claim due runs")

    async def _claim_round(self) -> None:
        room = limits.RUNNER_BATCH - len(self._advancing)
        if room <= 0:
            return
        claimed = await run_in_threadpool(self._claim, room)
        for run_id in claimed:
            if run_id in self._advancing:
                continue
            self._advancing.add(run_id)
            task = asyncio.create_task(self._advance(run_id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if len(claimed) == room:  # more may be due: claim again as soon as there is room
            self._ring()

    def _claim(self, room: int) -> list[str]:
        with self.runtime.db.transaction() as session:
            return store.claim_due(session, time.time(), limits.RUNNER_CLAIM_SECONDS, room)

    async def _advance(self, run_id: str) -> None:
        try:
            await anyio.to_thread.run_sync(self._settle, run_id, limiter=self._threads)
        except Exception:  # its claim lapses and it is due again; the run's own failures are `safety`'s
            log.exception("the runner could not advance run %s", run_id)
        finally:
            self._advancing.discard(run_id)
            if not self._rung and len(self._advancing) == limits.RUNNER_BATCH - 1:
                self._ring()  # a full runner has room again

    def _settle(self, run_id: str) -> None:
        attempts: list[Ctx] = []

        def work(session: Session) -> None:
            run = store.get_by_id_thread_first(session, run_id)
            if run is None:
                return
            ctx = Ctx(session=session, tenant=run.tenant, settings=self.runtime.settings, ids=self.runtime.ids,
                      model=self.runtime.model, db=self.runtime.db)
            attempts.append(ctx)
            safety.advance(ctx, run)

        self.runtime.db.run_in_worker(work, write=True)
        if attempts:
            attempts[-1].committed()

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def run(runtime: Runtime) -> None:
    """The process's runner, until cancelled (the app's lifespan)."""
    runner = Runner(runtime)
    schedule.listen(runner.due)
    try:
        await runner.run_forever()
    finally:
        schedule.listen(None)
        await runner.aclose()
