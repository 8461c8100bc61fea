"""What a request's domain code needs: its tenant, its transaction, the clock, ids and settings."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy.orm import Session

from emulator import clock, limits
from emulator.commits import commit
from emulator.db import Database, require_worker_thread
from emulator.ids import IdFactory
from emulator.settings import Settings
from emulator.store import clocks
from emulator.stub_model import Model, StubModel


@functools.lru_cache(maxsize=4096)
def tenant_of(api_key: str) -> str:
    """A tenant is an API key; we store a digest of it, never the key itself."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:32]


class _NoTransactionYet:
    def __getattr__(self, name: str) -> Any:
        raise RuntimeError("the request's transaction is opened by its route (api.deps.UnitOfWorkRoute)")


NO_SESSION = cast(Session, _NoTransactionYet())
"""The session of a request's `Ctx` until its unit of work binds one."""


@dataclass
class Ctx:
    session: Session
    tenant: str
    settings: Settings
    ids: IdFactory
    model: Model = field(default_factory=StubModel)
    include: frozenset[str] = frozenset()
    """`include[]` of the request: which optional parts of run steps its events and answers show."""
    db: Database | None = field(default=None, repr=False)
    """Where a request's unit of work opens its transaction (`api.deps.UnitOfWorkRoute`)."""
    write: bool = True
    _now: int | None = field(default=None, repr=False)
    _offset: int | None = field(default=None, repr=False)
    _after_commit: list[Callable[[], None]] = field(default_factory=list, repr=False)
    _after_rollback: list[Callable[[], None]] = field(default_factory=list, repr=False)
    _planned_before_begin: int | None = field(default=None, repr=False)

    def begin(self, session: Session) -> None:
        """Bind a new transaction: what an earlier attempt read or planned is forgotten, what the request's
        dependencies planned before the first one is kept."""
        self.session = session
        self._now = self._offset = None
        self._after_rollback.clear()
        if self._planned_before_begin is None:
            self._planned_before_begin = len(self._after_commit)
        del self._after_commit[self._planned_before_begin :]

    @property
    def now(self) -> int:
        """Emulator time, read once per request so that one request sees one instant."""
        if self._now is None:
            self._now = clock.at(self._clock_offset())
        return self._now

    def _clock_offset(self) -> int:
        """The tenant's clock offset, read once per transaction (an advance commits in its own)."""
        if self._offset is None:
            self._offset = clocks.offset_seconds(self.session, self.tenant)
        return self._offset

    def clock_read(self, offset: int | None) -> None:
        """The tenant's clock offset was read along with another query: it gives `now` and `precise_now` without a
        query of their own (unless the request has its instant already)."""
        if self._offset is None:
            self._offset = offset or 0
        if self._now is None:
            self._now = clock.at(self._offset)

    def commit_and_continue(self) -> None:
        """Commit what the unit of work did so far and release its locks: what follows runs in a new
        transaction, at a new instant. For work that must not hold a transaction open (a code cell); only in a
        worker thread (the event loop's lane cannot commit part of a unit of work). What the committed part
        planned to do after its commit (`after_commit`) is done now: a later retry or error cannot undo it."""
        require_worker_thread("the unit of work commits before work that must not hold a transaction")
        commit(self.session, self.session.commit)
        self._now = self._offset = None
        self.committed()
        self._planned_before_begin = 0  # a later attempt of the unit of work keeps nothing of this one's plans

    def after_commit(self, action: Callable[[], None]) -> None:
        """Run `action` once this request's transaction has committed (never if it rolls back); the request's
        unit of work calls `committed`."""
        self._after_commit.append(action)

    def committed(self) -> None:
        actions, self._after_commit = self._after_commit, []
        self._after_rollback.clear()
        for action in actions:
            action()

    def after_rollback(self, action: Callable[[], None]) -> None:
        """Run `action` if this request's unit of work fails for good (not when an attempt is retried): undo what
        the request did outside the database, such as an upload already on disk."""
        self._after_rollback.append(action)

    def rolled_back(self) -> None:
        actions, self._after_rollback = self._after_rollback, []
        for action in actions:
            action()

    @property
    def precise_now(self) -> float:
        return clock.precise_at(self._clock_offset())

    @property
    def threads_alive_since(self) -> int:
        return self.now - self.settings.thread_retention_days * limits.SECONDS_PER_DAY
