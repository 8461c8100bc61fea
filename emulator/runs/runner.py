"""The runner: in each server process, a task that advances the runs nobody watches.

A run is due (`runs.due_at`, set by `schedule.plan`) when it can move without a client: a queued run at once,
a run whose model answer is ready at the answer's time, an upstream model call at once. The runner claims due
runs that no stream or work holds, in the database (`store.runs.claim_due`: one statement, rows another
replica is claiming skipped), so several replicas share the work and none takes a run another holds; the claim
pushes `due_at` a few seconds on, and a runner that dies leaves its runs due again after that.

Each claimed run is settled in one unit of work (`safety.advance`, `executor.settle`): what a read under the
`immediate` policy would do, so a client sees the same run, only sooner. On SQLite it runs on the event loop's
lane like a request's, else in a worker thread; an upstream model call, which reads leave to the runner, holds
one of the runner's `RUNNER_BATCH` threads while the upstream answers.

The runner is woken by this process's units of work that make a run due (`wakeups`), at the time a
run becomes due, when a clock moves (here or on another replica: the hub's `time_moved`), and every
`RUNNER_SWEEP_SECONDS` to sweep the index for runs made due elsewhere or left by a process that died.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import heapq
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import anyio
from sqlalchemy.orm import Session

from emulator import db_errors, lanes, limits
from emulator.context import Ctx
from emulator.runs import safety, wakeups
from emulator.server_state import Runtime
from emulator.store import runs as store

log = logging.getLogger("emulator.runner")

T = TypeVar("T")


class _Alarm:
    """When the runner looks next: the due times this process was told of, soonest first, and one timer for the
    soonest, never sooner than `RUNNER_ROUND_SECONDS` after the last round (runs due close together are claimed
    by one round). A run told of by id is forgotten when this process tells that it is no longer due (a read
    settled it first, the common case), so that its time passes without a claim that would find nothing."""

    def __init__(self, loop: asyncio.AbstractEventLoop, ring: Callable[[], None]) -> None:
        self._loop = loop
        self._loop_thread = threading.get_ident()
        self._ring = ring
        self._dues: list[tuple[float, str]] = []
        """(due time, run id or "" for a time told without a run), as a heap; an entry of a run whose latest
        due time (`_runs`) is another is stale, and dropped when it comes first."""
        self._runs: dict[str, float] = {}
        self._lock = threading.Lock()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self._last_round = 0.0

    def add(self, due_at: float, run_id: str = "") -> None:
        """Called from any thread; costs a wake-up of the loop only for a new soonest time."""
        with self._lock:
            if run_id:
                self._runs[run_id] = due_at
            heapq.heappush(self._dues, (due_at, run_id))
            soonest = self._dues[0] == (due_at, run_id) and due_at < self._timer_at
        if not soonest:
            return
        if threading.get_ident() == self._loop_thread:
            self.arm()
        else:
            self._loop.call_soon_threadsafe(self.arm)

    def forget(self, run_id: str) -> None:
        """The run is not due any more (called from any thread). Its timer, if armed, finds nothing and is armed
        again for the next time."""
        with self._lock:
            self._runs.pop(run_id, None)

    def arm(self) -> None:
        with self._lock:
            at = self._soonest()
        if at >= self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = max(at, self._last_round + limits.RUNNER_ROUND_SECONDS)
        self._timer = self._loop.call_later(max(0.0, self._timer_at - time.time()), self._fire)

    def _soonest(self) -> float:
        """The soonest due time that stands (with the lock held)."""
        while self._dues:
            due_at, run_id = self._dues[0]
            if not run_id or self._runs.get(run_id) == due_at:
                return due_at
            heapq.heappop(self._dues)
        return math.inf

    def _fire(self) -> None:
        self._timer, self._timer_at = None, math.inf
        with self._lock:
            due = self._soonest() <= time.time()
        if due:
            self._ring()
        else:
            self.arm()

    def round_starts(self) -> None:
        """A claim round starts: every due time up to now is its."""
        now = self._last_round = time.time()
        with self._lock:
            while self._dues and self._dues[0][0] <= now:
                due_at, run_id = heapq.heappop(self._dues)
                if run_id and self._runs.get(run_id) == due_at:
                    del self._runs[run_id]


class Runner:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._wake = asyncio.Event()
        self._alarm = _Alarm(asyncio.get_running_loop(), self._wake.set)
        self._threads = anyio.CapacityLimiter(limits.RUNNER_BATCH)
        self._advancing: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def due(self, due_at: float | None, run_id: str = "") -> None:
        """A run is due at `due_at` (wall seconds): wake the runner then; None: the run (`run_id`) is not due any
        more. Called from any thread."""
        if due_at is not None:
            self._alarm.add(due_at, run_id)
        elif run_id:
            self._alarm.forget(run_id)

    async def run_forever(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), limits.RUNNER_SWEEP_SECONDS)
            self._wake.clear()
            self._alarm.round_starts()
            try:
                await self._claim_round()
            except Exception as error:  # the database may be away for a moment: the next round tries again
                db_errors.log_background_failure(log, "the runner could not claim due runs", error)
            self._alarm.arm()

    async def _claim_round(self) -> None:
        room = limits.RUNNER_BATCH - len(self._advancing)
        if room <= 0:
            return
        claimed = await self._unit_of_work(functools.partial(self._claim, room))
        for run_id in claimed:
            if run_id in self._advancing:
                continue
            self._advancing.add(run_id)
            task = asyncio.create_task(self._advance(run_id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if len(claimed) == room:  # more may be due: claim again as soon as there is room
            self._wake.set()

    @staticmethod
    def _claim(room: int, session: Session) -> list[str]:
        return store.claim_due(session, time.time(), limits.RUNNER_CLAIM_SECONDS, room)

    async def _unit_of_work(self, work: Callable[[Session], T], limiter: anyio.CapacityLimiter | None = None) -> T:
        """`work` in one write transaction: on SQLite's event-loop lane when it can (as requests are; a stub
        run settles there), else (an upstream call, a code cell, a busy database) in a worker thread."""
        return await lanes.run(self.runtime.db, work, write=True, limiter=limiter)

    async def _advance(self, run_id: str) -> None:
        try:
            await self._settle(run_id)
        except Exception as error:  # its claim lapses and it is due again; the run's own failures are `safety`'s
            db_errors.log_background_failure(log, f"the runner could not advance run {run_id}", error)
        finally:
            self._advancing.discard(run_id)
            if len(self._advancing) == limits.RUNNER_BATCH - 1:
                self._wake.set()  # a full runner has room again

    async def _settle(self, run_id: str) -> None:
        attempts: list[Ctx] = []

        def work(session: Session) -> None:
            run = store.get_by_id_thread_first(session, run_id)
            if run is None:
                return
            ctx = Ctx(session=session, tenant=run.tenant, settings=self.runtime.settings, ids=self.runtime.ids,
                      model=self.runtime.model, db=self.runtime.db)
            attempts.append(ctx)
            safety.advance(ctx, run)

        await self._unit_of_work(work, self._threads)
        if attempts:
            attempts[-1].committed()

    async def aclose(self) -> None:
        """Stop advancing; a unit of work already in a worker thread (an upstream call) is not waited for long:
        its run's claim lapses and another runner resumes it."""
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=1.0)


async def run(runtime: Runtime) -> None:
    """The process's runner, until cancelled (the app's lifespan)."""
    runner = Runner(runtime)
    wakeups.listen(runner.due)
    try:
        await runner.run_forever()
    finally:
        wakeups.listen(None)
        await runner.aclose()
