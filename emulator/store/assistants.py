"""Assistants: the only code that reads or writes the `assistants` table."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, delete
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from emulator.errors import NotFound
from emulator.store import statements
from emulator.store.pagination import Page, PageRequest, paginate, select_scoped
from emulator.tables import AssistantRow


def create(
    session: Session, *, tenant: str, assistant_id: str, created_at: int, **fields: Any
) -> AssistantRow:
    row = AssistantRow(id=assistant_id, tenant=tenant, created_at=created_at, **fields)
    session.add(row)
    session.flush()
    return row


def get(session: Session, tenant: str, assistant_id: str) -> AssistantRow:
    row = session.scalar(
        select_scoped(AssistantRow, AssistantRow.tenant == tenant, AssistantRow.id == assistant_id)
    )
    if row is None:
        raise NotFound.object("assistant", assistant_id)
    return row


_READ = statements.prepared(
    statements.select_columns(
        AssistantRow, AssistantRow.tenant == bindparam("tenant"), AssistantRow.id == bindparam("id")
    )
)


def read(session: Session, tenant: str, assistant_id: str) -> Row[Any]:
    """`get` as a plain row, only to read (a run takes its defaults from it)."""
    row = statements.first(session, _READ, {"tenant": tenant, "id": assistant_id})
    if row is None:
        raise NotFound.object("assistant", assistant_id)
    return row


def update(session: Session, row: AssistantRow, **fields: Any) -> AssistantRow:
    for name, value in fields.items():
        setattr(row, name, value)
    session.flush()
    return row


def remove(session: Session, tenant: str, assistant_id: str) -> None:
    result = session.execute(
        delete(AssistantRow).where(AssistantRow.tenant == tenant, AssistantRow.id == assistant_id)
    )
    if result.rowcount == 0:
        raise NotFound.object("assistant", assistant_id)


def list_page(session: Session, tenant: str, page: PageRequest) -> Page[AssistantRow]:
    return paginate(session, AssistantRow, select_scoped(AssistantRow, AssistantRow.tenant == tenant), page)
