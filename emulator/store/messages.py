"""Messages of a thread."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from emulator.errors import NotFound
from emulator.store.pagination import Page, PageRequest, paginate, select_scoped
from emulator.tables import MessageRow


def create(
    session: Session,
    *,
    tenant: str,
    message_id: str,
    thread_id: str,
    now: int,
    role: str,
    content: list[dict[str, Any]],
    attachments: list[dict[str, Any]],
    metadata: dict[str, str],
    status: str = "completed",
    assistant_id: str | None = None,
    run_id: str | None = None,
) -> MessageRow:
    row = MessageRow(
        id=message_id,
        tenant=tenant,
        thread_id=thread_id,
        created_at=now,
        role=role,
        content=content,
        attachments=attachments,
        metadata_=metadata,
        status=status,
        assistant_id=assistant_id,
        run_id=run_id,
        completed_at=now if status == "completed" else None,
    )
    session.add(row)
    return row


def get(session: Session, tenant: str, thread_id: str, message_id: str) -> MessageRow:
    row = session.scalar(
        select_scoped(
            MessageRow,
            MessageRow.tenant == tenant,
            MessageRow.thread_id == thread_id,
            MessageRow.id == message_id,
        )
    )
    if row is None:
        raise NotFound.object("message", message_id)
    return row


def remove(session: Session, tenant: str, thread_id: str, message_id: str) -> None:
    result = session.execute(
        delete(MessageRow).where(
            MessageRow.tenant == tenant, MessageRow.thread_id == thread_id, MessageRow.id == message_id
        )
    )
    if result.rowcount == 0:
        raise NotFound.object("message", message_id)


def list_page(
    session: Session, thread_id: str, page: PageRequest, run_id: str | None = None
) -> Page[MessageRow]:
    conditions = [MessageRow.thread_id == thread_id]
    if run_id is not None:
        conditions.append(MessageRow.run_id == run_id)
    return paginate(session, MessageRow, select_scoped(MessageRow, *conditions), page)
