"""The emulator's one clock: wall time plus an offset kept in the database.

Keeping the offset in the database (not in a process) means `POST /_emulator/clock/advance` moves time for
every tenant and every replica at once. Nothing else in the code base reads the wall clock for API time.
"""

from __future__ import annotations

import time

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from emulator.store import plain
from emulator.tables import ClockRow

CLOCK_ROW_ID = 1

_OFFSET = plain.prepared(select(ClockRow.__table__.c.offset_seconds).where(ClockRow.__table__.c.id == CLOCK_ROW_ID))
OFFSET_COLUMN = _OFFSET.scalar_subquery().label("clock_offset")
"""The offset as a column, so a request's first query can read the clock along with its own rows."""


def offset_seconds(session: Session) -> int:
    return plain.scalar(session, _OFFSET, {}) or 0


def at(offset: int | None) -> int:
    """Emulator time in Unix seconds, given the offset read from the database."""
    return int(time.time()) + (offset or 0)


def now(session: Session) -> int:
    """Emulator time in Unix seconds."""
    return at(offset_seconds(session))


def precise_at(offset: int | None) -> float:
    """Emulator time with sub-second precision, for latencies, given the offset read from the database."""
    return time.time() + (offset or 0)



def advance(session: Session, seconds: int) -> int:
    """Move the clock forward atomically (safe against concurrent advances from several replicas)."""
    session.execute(
        update(ClockRow).where(ClockRow.id == CLOCK_ROW_ID).values(offset_seconds=ClockRow.offset_seconds + seconds)
    )
    return now(session)
