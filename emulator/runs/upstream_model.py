"""The upstream model as the run engine holds it: the backend, the event loop its connections live on, and the
calls in flight (so that a cancel in this process aborts its call at once).

A run's unit of work runs in a worker thread; the call runs as a task on the server's event loop (where the
backend's connection pool lives) and the worker waits for it with no transaction open (`upstream_turn`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable

from emulator.stub_model import ModelRequest, ModelTurn
from emulator.upstream.backend import UpstreamBackend
from emulator.upstream.deltas import FinishedTurn
from emulator.upstream.errors import UpstreamError
from emulator.upstream.request import TurnRequest

log = logging.getLogger("emulator.upstream")

Aborted = None
"""What a call cancelled in this process (the run's cancel) answers."""


class UpstreamModel:
    """A `stub_model.Model` whose turns come from the upstream, outside any transaction (`upstream_turn.ask`)."""

    def __init__(self, backend: UpstreamBackend, loop: asyncio.AbstractEventLoop) -> None:
        self.backend = backend
        self.loop = loop
        self._in_flight: dict[str, concurrent.futures.Future[FinishedTurn]] = {}
        self._lock = threading.Lock()

    def respond(self, request: ModelRequest) -> ModelTurn:
        raise RuntimeError("an upstream turn is asked outside the transaction (runs.upstream_turn.ask)")

    def answer(
        self, run_id: str, request: TurnRequest, *, renew: Callable[[], None], every: float
    ) -> FinishedTurn | UpstreamError | None:
        """The upstream's whole turn (blocking the calling worker thread, calling `renew` `every` seconds while
        it waits); its failure; None when aborted."""
        future = asyncio.run_coroutine_threadsafe(self._complete(run_id, request), self.loop)
        with self._lock:
            self._in_flight[run_id] = future
        try:
            while True:
                try:
                    return future.result(timeout=every)
                except TimeoutError:
                    renew()
        except UpstreamError as error:
            log.warning("run %s: the upstream model call failed (%s): %s", run_id, error.kind, error.message)
            return error
        except concurrent.futures.CancelledError:
            log.info("run %s: its upstream model call was aborted", run_id)
            return Aborted
        finally:
            with self._lock:
                self._in_flight.pop(run_id, None)

    async def _complete(self, run_id: str, request: TurnRequest) -> FinishedTurn:
        try:
            async with self.backend.stream(request) as turn:
                async for _delta in turn:
                    pass
            finished = turn.finished()
        except UpstreamError as error:
            await self.backend.record(request, error, run_id=run_id)
            raise
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
