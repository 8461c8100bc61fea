"""The upstream model as the run engine holds it: the backend, the event loop its connections live on, the calls
in flight (so that a cancel in this process aborts its call at once) and the streams that watch them.

A run's unit of work runs in a worker thread; the call runs as a task on the server's event loop (where the
backend's connection pool lives) and the worker waits for it with no transaction open (`upstream_turn`). The
task hands each delta to the run's `live.LiveTurn`, which opens the step at the first fragment, and publishes the
events it makes at once to the run's streams in this process (`subscribe`).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
import threading
from collections.abc import Callable

from emulator.runs.events import Event
from emulator.runs.live import Flusher, LiveTurn, RunMoved
from emulator.stub_model import ModelRequest, ModelTurn
from emulator.upstream.backend import UpstreamBackend
from emulator.upstream.deltas import FinishedTurn
from emulator.upstream.errors import UpstreamError
from emulator.upstream.request import TurnRequest

log = logging.getLogger("emulator.upstream")

Aborted = None
"""What a call cancelled in this process (the run's cancel) answers."""

Answer = FinishedTurn | UpstreamError | None
"""The upstream's turn, its failure, or `Aborted`."""

class Subscription:
    """A stream's view of its run's live events; None: the phase it waited on has ended (`streaming`). One reader,
    on the event loop, which takes everything that came at once (one write to its client): lighter than an
    `asyncio.Queue`, and every streamed delta goes through one."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: collections.deque[Event | None] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Event | None) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def take_all(self) -> list[Event | None]:
        """What came since the last take, waiting for something if nothing did."""
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        items = list(self._items)
        self._items.clear()
        return items


class UpstreamModel:
    """A `stub_model.Model` whose turns come from the upstream, outside any transaction (`upstream_turn.ask`)."""

    def __init__(self, backend: UpstreamBackend, loop: asyncio.AbstractEventLoop) -> None:
        self.backend = backend
        self.loop = loop
        self._in_flight: dict[str, concurrent.futures.Future[Answer]] = {}
        self._lock = threading.Lock()
        self._watchers: dict[str, list[Subscription]] = {}
        """Touched on the event loop only."""
        self._flusher = Flusher(self.abort)

    def respond(self, request: ModelRequest) -> ModelTurn:
        raise RuntimeError("an upstream turn is asked outside the transaction (runs.upstream_turn.ask)")

    def subscribe(self, run_id: str) -> Subscription:
        """The run's live events from now on (on the event loop)."""
        queue = Subscription()
        self._watchers.setdefault(run_id, []).append(queue)
        return queue

    def unsubscribe(self, run_id: str, queue: Subscription) -> None:
        watchers = self._watchers.get(run_id)
        if watchers is not None and queue in watchers:
            watchers.remove(queue)
            if not watchers:
                del self._watchers[run_id]

    def _publish(self, run_id: str, produced: list[Event]) -> None:
        for queue in self._watchers.get(run_id, ()):
            for event in produced:
                queue.put_nowait(event)

    def start(
        self, run_id: str, request: TurnRequest, live: LiveTurn, done: Callable[[Answer], None]
    ) -> concurrent.futures.Future[Answer]:
        """Start the call (from any thread); `done` gets its answer once, before the future is done (a call
        aborted before it began answers `Aborted` too)."""
        called: list[bool] = []

        def once(answer: Answer) -> None:
            if not called:
                called.append(True)
                done(answer)

        future = asyncio.run_coroutine_threadsafe(self._answer(run_id, request, live, once), self.loop)
        with self._lock:
            self._in_flight[run_id] = future
        future.add_done_callback(lambda _future: self._ended(run_id, future, once))
        return future

    def _ended(self, run_id: str, future: concurrent.futures.Future[Answer], done: Callable[[Answer], None]) -> None:
        with self._lock:
            if self._in_flight.get(run_id) is future:
                del self._in_flight[run_id]
        if future.cancelled():
            done(Aborted)

    def answer(
        self, run_id: str, request: TurnRequest, live: LiveTurn, *, renew: Callable[[], None], every: float
    ) -> Answer:
        """The upstream's whole turn (blocking the calling worker thread, calling `renew` `every` seconds while
        it waits; its fragments reach `live` as they come); its failure; None when aborted."""
        future = self.start(run_id, request, live, lambda _answer: None)
        while True:
            try:
                return future.result(timeout=every)
            except TimeoutError:
                renew()
            except concurrent.futures.CancelledError:
                log.info("run %s: its upstream model call was aborted", run_id)
                return Aborted

    async def _answer(self, run_id: str, request: TurnRequest, live: LiveTurn, done: Callable[[Answer], None]
                      ) -> Answer:
        answer: Answer
        try:
            answer = await self._complete(run_id, request, live)
        except UpstreamError as error:
            log.warning("run %s: the upstream model call failed (%s): %s", run_id, error.kind, error.message)
            answer = error
        except RunMoved:
            log.info("run %s moved on before its turn's step opened: its upstream model call ends", run_id)
            answer = Aborted
        except asyncio.CancelledError:
            log.info("run %s: its upstream model call was aborted", run_id)
            done(Aborted)
            raise
        done(answer)
        return answer

    async def _complete(self, run_id: str, request: TurnRequest, live: LiveTurn) -> FinishedTurn:
        self._flusher.add(live)
        try:
            async with self.backend.stream(request) as turn:
                async for delta in turn:
                    kind = live.deciding(delta)
                    if kind is not None:
                        self._publish(run_id, await asyncio.to_thread(live.open, kind))
                    produced = live.take(delta)
                    if produced and run_id in self._watchers:
                        self._publish(run_id, produced)
            finished = turn.finished()
        except UpstreamError as error:
            await self.backend.record(request, error, run_id=run_id)
            raise
        finally:
            self._flusher.remove(run_id)
        await self.backend.record(request, finished, run_id=run_id)
        return finished

    def abort(self, run_id: str) -> None:
        """Cancel the run's call in flight in this process, if any (the upstream sees the request closed)."""
        with self._lock:
            future = self._in_flight.get(run_id)
        if future is not None:
            future.cancel()

    async def aclose(self) -> None:
        await self.backend.aclose()
