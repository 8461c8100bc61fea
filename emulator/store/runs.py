"""Runs and run steps, and the thread's active-run claim that keeps one active run per thread."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from emulator.errors import NotFound
from emulator.store.pagination import Page, PageRequest, paginate, select_scoped
from emulator.tables import MessageRow, RunRow, RunStepRow, ThreadRow


def claim_thread(session: Session, thread_id: str, run_id: str) -> bool:
    """Make `run_id` the thread's active run, atomically; False when another run already holds it."""
    result = session.execute(
        update(ThreadRow)
        .where(ThreadRow.id == thread_id, ThreadRow.active_run_id.is_(None))
        .values(active_run_id=run_id)
    )
    return result.rowcount == 1


def release_thread(session: Session, thread_id: str, run_id: str) -> None:
    session.execute(
        update(ThreadRow)
        .where(ThreadRow.id == thread_id, ThreadRow.active_run_id == run_id)
        .values(active_run_id=None)
    )


def create(session: Session, **fields: Any) -> RunRow:
    row = RunRow(**fields)
    session.add(row)
    session.flush()
    return row


def get(session: Session, tenant: str, thread_id: str, run_id: str, *, lock: bool = False) -> RunRow:
    query = select_scoped(RunRow, RunRow.tenant == tenant, RunRow.thread_id == thread_id, RunRow.id == run_id)
    row = session.scalar(query.with_for_update() if lock else query)
    if row is None:
        raise NotFound.object("run", run_id)
    return row


def get_by_id(session: Session, run_id: str, *, lock: bool = False) -> RunRow | None:
    query = select(RunRow).where(RunRow.id == run_id)
    return session.scalar(query.with_for_update() if lock else query)


def list_page(session: Session, thread_id: str, page: PageRequest) -> Page[RunRow]:
    return paginate(session, RunRow, select_scoped(RunRow, RunRow.thread_id == thread_id), page)


def create_step(session: Session, **fields: Any) -> RunStepRow:
    row = RunStepRow(**fields)
    session.add(row)
    session.flush()
    return row


def get_step(session: Session, run_id: str, step_id: str) -> RunStepRow:
    row = session.scalar(select_scoped(RunStepRow, RunStepRow.run_id == run_id, RunStepRow.id == step_id))
    if row is None:
        raise NotFound.object("run step", step_id)
    return row


def steps_of(session: Session, run_id: str) -> list[RunStepRow]:
    return list(session.scalars(select(RunStepRow).where(RunStepRow.run_id == run_id).order_by(RunStepRow.seq)))


def list_steps(session: Session, run_id: str, page: PageRequest) -> Page[RunStepRow]:
    return paginate(session, RunStepRow, select_scoped(RunStepRow, RunStepRow.run_id == run_id), page)


def thread_history(session: Session, thread_id: str) -> list[MessageRow]:
    """Every finished message of the thread, oldest first: what a model call may see."""
    return list(
        session.scalars(
            select(MessageRow)
            .where(MessageRow.thread_id == thread_id, MessageRow.status != "in_progress")
            .order_by(MessageRow.seq)
        )
    )


def open_message(session: Session, run_id: str) -> MessageRow | None:
    return session.scalar(
        select(MessageRow).where(MessageRow.run_id == run_id, MessageRow.status == "in_progress")
    )
