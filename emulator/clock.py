"""The emulator's clocks: wall time plus an offset kept in the database, one clock per tenant.

A tenant's time is the wall clock plus two offsets (`store.clocks`): every tenant's, moved only with the
operator key (`EMULATOR_ADMIN_KEY`), and its own, moved by its `POST /_emulator/clock/advance`. Kept in the
database, so every replica agrees; per tenant, so parallel test suites on one server (one key each) move their
own time without expiring each other's runs and threads. Nothing else in the code base reads the wall clock
for API time.
"""

from __future__ import annotations

import time

from sqlalchemy.orm import Session

from emulator.store import clocks


def at(offset: int | None) -> int:
    """Emulator time in Unix seconds, given the offset read from the database."""
    return int(time.time()) + (offset or 0)


def now(session: Session, tenant: str) -> int:
    """The tenant's emulator time in Unix seconds."""
    return at(clocks.offset_seconds(session, tenant))


def server_now(session: Session) -> int:
    """Emulator time before any tenant's own advance: what a tenant that never advanced sees."""
    return at(clocks.every_tenant_offset(session))


def precise_at(offset: int | None) -> float:
    """Emulator time with sub-second precision, for latencies, given the offset read from the database."""
    return time.time() + (offset or 0)
