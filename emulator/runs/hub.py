"""The process's run hub: who waits for a run learns at once that it changed.

Every unit of work that changes a run (its status, steps or messages) notifies the run once it has committed
(`store.records.Table` marks the run, `commits.commit` calls `notify_many`); on PostgreSQL the committing thread also
sends a `pg_notify` (`store.notifications.Sender`) that the other processes' listeners
(`store.notifications.Listener`) turn into their own notifies. A waiter (a stream waiting for its run's first
token) holds a `Subscription` on the event loop: a future while it waits and a timer for its timeout, nothing per
second; the run's entry goes when its last subscription closes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Iterator

from emulator.store.records import EVERY_RUN


class Subscription:
    """One waiter's interest in a run. A notify that comes while the waiter is not waiting (it is reading the
    run) is kept: its next `wait` returns at once, so nothing is missed between a read and a wait."""

    __slots__ = ("_future", "_notified", "run_id")

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self._notified = False
        self._future: asyncio.Future[None] | None = None

    def _wake(self) -> None:
        self._notified = True
        future = self._future
        if future is not None and not future.done():
            future.set_result(None)

    async def wait(self, timeout: float) -> bool:
        """Wait until the run is notified (True; at once if it was since the last wait) or `timeout` seconds
        have passed (False)."""
        if not self._notified:
            loop = asyncio.get_running_loop()
            future = self._future = loop.create_future()
            timer = loop.call_later(timeout, _settle, future)
            try:
                await future
            finally:
                timer.cancel()
                self._future = None
        notified, self._notified = self._notified, False
        return notified


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class RunHub:
    """Wakes the event loop's subscribers of a run; `notify` and `notify_many` may be called from any thread.
    `time_moved` is called (from any thread) when a clock moved (`EVERY_RUN`): a run may have become due (the
    process's runner looks, `runs.wakeups.ring_now`)."""

    def __init__(self, time_moved: Callable[[], None] | None = None) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscribers: dict[str, set[Subscription]] = {}
        self._time_moved = time_moved

    def bind_running_loop(self) -> None:
        """Deliver notifies on the running loop (the server's): the one its subscribers wait on."""
        self._loop = asyncio.get_running_loop()

    def notify(self, run_id: str) -> None:
        self.notify_many((run_id,))

    def notify_many(self, run_ids: Iterable[str]) -> None:
        """Wake every subscriber of these runs (of every run for `EVERY_RUN`): at once on the event loop, else
        from another thread through the loop. A run nobody waits for costs a dictionary look-up."""
        run_ids = tuple(run_ids)
        if EVERY_RUN in run_ids:
            self.notify_all()
            if self._time_moved is not None:
                self._time_moved()
            return
        waited = [run_id for run_id in run_ids if run_id in self._subscribers]
        loop = self._loop
        if not waited or loop is None:
            return
        if _running_loop() is loop:
            self._wake(waited)
            return
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
            loop.call_soon_threadsafe(self._wake, waited)

    def notify_all(self) -> None:
        """Wake every subscriber (time moved, or news may have been lost: what changed is not known)."""
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(lambda: self._wake(list(self._subscribers)))

    def _wake(self, run_ids: Iterable[str]) -> None:
        for run_id in run_ids:
            for subscription in self._subscribers.get(run_id, ()):
                subscription._wake()

    @contextlib.contextmanager
    def subscribe(self, run_id: str) -> Iterator[Subscription]:
        """A subscription to the run's changes for the block (on the event loop)."""
        if self._loop is None:
            self.bind_running_loop()
        subscription = Subscription(run_id)
        subscribers = self._subscribers.setdefault(run_id, set())
        subscribers.add(subscription)
        try:
            yield subscription
        finally:
            subscribers.discard(subscription)
            if not subscribers and self._subscribers.get(run_id) is subscribers:
                del self._subscribers[run_id]

    async def wait(self, run_id: str, timeout: float) -> bool:
        """Wait until the run is notified (True) or `timeout` seconds have passed (False)."""
        with self.subscribe(run_id) as subscription:
            return await subscription.wait(timeout)

    def waited_runs(self) -> list[str]:
        """The runs that have subscribers now."""
        return list(self._subscribers)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
