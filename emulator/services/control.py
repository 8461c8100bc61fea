"""The control plane's domain: the clock, retention sweeps, and resetting a tenant."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from emulator import clock
from emulator.context import Ctx
from emulator.store import retention
from emulator.tables import AssistantRow, FileRow, MessageRow, RunRow, RunStepRow, ThreadRow

_SECONDS_PER_DAY = 86_400


def sweep(session: Session, retention_days: int) -> int:
    return retention.sweep_threads(
        session, alive_since=clock.now(session) - retention_days * _SECONDS_PER_DAY
    )


def advance_clock(session: Session, seconds: int, retention_days: int) -> int:
    """Move time forward for everyone, then delete what the new time has made too old."""
    now = clock.advance(session, seconds)
    sweep(session, retention_days)
    return now


def reset_tenant(ctx: Ctx) -> list[Path]:
    """Delete every object of the calling tenant; returns the file paths to remove after commit."""
    session = ctx.session
    paths = [
        Path(p) for p in session.scalars(select(FileRow.storage_path).where(FileRow.tenant == ctx.tenant))
    ]
    session.execute(delete(RunStepRow).where(RunStepRow.tenant == ctx.tenant))
    session.execute(delete(RunRow).where(RunRow.tenant == ctx.tenant))
    session.execute(delete(MessageRow).where(MessageRow.tenant == ctx.tenant))
    session.execute(delete(ThreadRow).where(ThreadRow.tenant == ctx.tenant))
    session.execute(delete(AssistantRow).where(AssistantRow.tenant == ctx.tenant))
    session.execute(delete(FileRow).where(FileRow.tenant == ctx.tenant))
    return paths


def remove_paths(paths: list[Path]) -> None:
    for path in paths:
        if path.exists():
            os.unlink(path)
