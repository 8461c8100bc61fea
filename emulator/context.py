"""What a request's domain code needs: its tenant, its transaction, the clock, ids and settings."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import event
from sqlalchemy.orm import Session

from emulator import clock
from emulator.ids import IdFactory
from emulator.settings import Settings
from emulator.stub_model import Model, StubModel

_SECONDS_PER_DAY = 86_400


def tenant_of(api_key: str) -> str:
    """A tenant is an API key; we store a digest of it, never the key itself."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:32]


@dataclass
class Ctx:
    session: Session
    tenant: str
    settings: Settings
    ids: IdFactory
    model: Model = field(default_factory=StubModel)
    include: frozenset[str] = frozenset()
    """`include[]` of the request: which optional parts of run steps its events and answers show."""
    _now: int | None = field(default=None, repr=False)

    @property
    def now(self) -> int:
        """Emulator time, read once per request so that one request sees one instant."""
        if self._now is None:
            self._now = clock.now(self.session)
        return self._now

    def clock_read(self, offset: int | None) -> None:
        """The clock offset was read along with another query: it gives `now` without a query of its own
        (unless the request has its instant already)."""
        if self._now is None:
            self._now = clock.at(offset)

    def after_commit(self, action: Callable[[], None]) -> None:
        """Run `action` once this request's transaction has committed (never if it rolls back)."""
        event.listen(self.session, "after_commit", lambda _session: action(), once=True)

    @property
    def precise_now(self) -> float:
        return clock.precise_now(self.session)

    @property
    def threads_alive_since(self) -> int:
        return self.now - self.settings.thread_retention_days * _SECONDS_PER_DAY
