"""Messages of a thread."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, delete, update
from sqlalchemy.orm import Session

from emulator.errors import NotFound
from emulator.store import statements
from emulator.store.pagination import Listing, Page, PageRequest
from emulator.store.records import Table
from emulator.store.rows import Message
from emulator.tables import MessageRow

MESSAGES = Table(Message, announces="run_id")
"""A message a run writes wakes who waits for the run (`runs.hub`)."""


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
) -> Message:
    """Insert a message, as the unit of work's record of it."""
    return MESSAGES.insert(
        session,
        {
            "id": message_id,
            "tenant": tenant,
            "thread_id": thread_id,
            "created_at": now,
            "role": role,
            "content": content,
            "attachments": attachments,
            "metadata_": metadata,
            "status": status,
            "assistant_id": assistant_id,
            "run_id": run_id,
            "completed_at": now if status == "completed" else None,
            "incomplete_at": None,
            "incomplete_details": None,
        },
    )


_MESSAGES = MessageRow.__table__.c
_BY_ID = statements.prepared(statements.select_columns(
    MessageRow,
    _MESSAGES.tenant == bindparam("tenant"),
    _MESSAGES.thread_id == bindparam("thread_id"),
    _MESSAGES.id == bindparam("message_id"),
))
_OF_THREAD = Listing(MESSAGES, statements.select_columns(MessageRow, _MESSAGES.thread_id == bindparam("thread_id")))
_OF_RUN = Listing(
    MESSAGES,
    statements.select_columns(
        MessageRow, _MESSAGES.thread_id == bindparam("thread_id"), _MESSAGES.run_id == bindparam("run_id")
    ),
)


def get(session: Session, tenant: str, thread_id: str, message_id: str) -> Message:
    """The message, as the unit of work's record of it (a change to it is written by the unit of work)."""
    message = MESSAGES.load(session, _BY_ID, {"tenant": tenant, "thread_id": thread_id, "message_id": message_id})
    if message is None:
        raise NotFound.object("message", message_id)
    return message


_DELETE = statements.prepared(
    delete(MessageRow).where(
        _MESSAGES.tenant == bindparam("tenant"),
        _MESSAGES.thread_id == bindparam("thread_id"),
        _MESSAGES.id == bindparam("message_id"),
    )
)


def remove(session: Session, tenant: str, thread_id: str, message_id: str) -> None:
    params = {"tenant": tenant, "thread_id": thread_id, "message_id": message_id}
    if statements.execute(session, _DELETE, params) == 0:
        raise NotFound.object("message", message_id)


def list_page(session: Session, thread_id: str, page: PageRequest, run_id: str | None = None) -> Page[Message]:
    if run_id is None:
        return _OF_THREAD.page(session, page, {"thread_id": thread_id})
    return _OF_RUN.page(session, page, {"thread_id": thread_id, "run_id": run_id})


_GROWING = update(MessageRow).where(
    _MESSAGES.id == bindparam("message_id"), _MESSAGES.status == "in_progress"
).values(content=bindparam("content"))


def write_growing(session: Session, contents: dict[str, list[dict[str, Any]]]) -> None:
    """The content so far of messages being generated, in one statement; a message no longer `in_progress`
    (its run's transaction ended it first) keeps what that transaction wrote."""
    if contents:
        session.connection().execute(
            _GROWING, [{"message_id": message_id, "content": content} for message_id, content in contents.items()]
        )
