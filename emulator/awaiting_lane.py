"""PostgreSQL's event-loop lane (see `emulator.db`): a unit of work runs on the loop, its statements awaited."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import Session

from emulator.commits import RUNS_CHANGED, RunsChanged, commit, log_transactions
from emulator.db import POOL_TIMEOUT_SECONDS, LeaveEventLoop, normalize_url, on_the_event_loop
from emulator.db_errors import is_conflict

log = logging.getLogger("emulator.db")

T = TypeVar("T")


class AwaitingLane:
    """PostgreSQL's event-loop lane: a unit of work runs on the loop, in a greenlet of SQLAlchemy's asyncio
    engine (psycopg's async connection), and each of its statements is awaited; it keeps its own `pool_size`
    connections, made at first use (on the loop).

    A connection is not pinged before each unit of work (a round trip: 8% of a streamed run's first event, one
    client after another). A unit of work that finds its connection closed (PostgreSQL restarted, a backend
    terminated) runs once more on a new one, unless it had begun to commit: then whether it committed is not
    known, and its error goes up."""

    def __init__(self, url: str, pool_size: int, runs_changed: RunsChanged | None) -> None:
        self._url = normalize_url(url)
        self._pool_size = pool_size
        self._info: dict[str, Any] = {RUNS_CHANGED: runs_changed}
        self._engine: AsyncEngine | None = None

    def _connected(self) -> AsyncEngine:
        if self._engine is None:
            self._engine = create_async_engine(self._url, pool_size=self._pool_size, max_overflow=0,
                                               pool_timeout=POOL_TIMEOUT_SECONDS)
            log_transactions(self._engine.sync_engine)
        return self._engine

    async def run(self, work: Callable[[Session], T]) -> T:
        """`work` in one transaction, committed on success. Raises `LeaveEventLoop`, rolled back, when it would
        block or met a conflict with another transaction."""
        with on_the_event_loop():
            return await self._run(work)

    async def _run(self, work: Callable[[Session], T]) -> T:
        try:
            attempt = _Attempt(work)
            try:
                return await self._once(attempt)
            except DBAPIError as error:
                if not error.connection_invalidated or attempt.committing:
                    raise
                log.info("a unit of work found its connection closed (%s); running it again on a new one", error.orig)
                return await self._once(_Attempt(work))
        except OperationalError as error:
            if is_conflict(error):
                raise LeaveEventLoop("a conflict with another transaction") from error
            raise

    async def _once(self, attempt: _Attempt[T]) -> T:
        async with AsyncSession(self._connected(), expire_on_commit=False, autoflush=False,
                                info=dict(self._info)) as session:
            try:
                return await session.run_sync(attempt)
            except BaseException:
                await session.rollback()
                raise

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None


class _Attempt(Generic[T]):
    """One run of a unit of work on the awaiting lane, in its greenlet: the work, then the commit."""

    def __init__(self, work: Callable[[Session], T]) -> None:
        self.work = work
        self.committing = False

    def __call__(self, session: Session) -> T:
        result = self.work(session)
        commit(session, lambda: self._commit(session))
        return result

    def _commit(self, session: Session) -> None:
        self.committing = True
        session.commit()
