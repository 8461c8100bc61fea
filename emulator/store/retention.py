"""Deletes what has outlived its retention period: threads idle for longer than `thread_retention_days`."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from emulator.store import threads
from emulator.tables import ThreadRow

_SWEEP_BATCH = 500


def sweep_threads(session: Session, *, alive_since: int) -> int:
    """Delete every thread whose last activity is older than `alive_since`; returns how many went."""
    removed = 0
    while True:
        ids = list(
            session.scalars(
                select(ThreadRow.id).where(ThreadRow.last_active_at < alive_since).limit(_SWEEP_BATCH)
            )
        )
        removed += threads.delete_ids(session, ids)
        if len(ids) < _SWEEP_BATCH:
            return removed
