"""Assistants: the only code that reads or writes the `assistants` table.

An assistant is a record (`store.records`): a change is an attribute set, written by the unit of work.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, delete
from sqlalchemy.orm import Session

from emulator.errors import NotFound
from emulator.store import statements
from emulator.store.pagination import Listing, Page, PageRequest
from emulator.store.records import Table
from emulator.store.rows import Assistant
from emulator.tables import AssistantRow

ASSISTANTS = Table(Assistant)

_BY_ID = statements.prepared(
    statements.select_columns(
        AssistantRow, AssistantRow.tenant == bindparam("tenant"), AssistantRow.id == bindparam("id")
    )
)
_DELETE = statements.prepared(
    delete(AssistantRow).where(AssistantRow.tenant == bindparam("tenant"), AssistantRow.id == bindparam("id"))
)
_OF_TENANT = Listing(ASSISTANTS, statements.select_columns(AssistantRow, AssistantRow.tenant == bindparam("tenant")))


def create(session: Session, *, tenant: str, assistant_id: str, created_at: int, **fields: Any) -> Assistant:
    """Insert an assistant: `fields` gives every column but its id, tenant and creation time."""
    return ASSISTANTS.insert(session, {"id": assistant_id, "tenant": tenant, "created_at": created_at, **fields})


def get(session: Session, tenant: str, assistant_id: str) -> Assistant:
    """The tenant's assistant (404 when there is none), as the unit of work's record: to read or to change."""
    row = ASSISTANTS.load(session, _BY_ID, {"tenant": tenant, "id": assistant_id})
    if row is None:
        raise NotFound.object("assistant", assistant_id)
    return row


def remove(session: Session, tenant: str, assistant_id: str) -> None:
    if statements.execute(session, _DELETE, {"tenant": tenant, "id": assistant_id}) == 0:
        raise NotFound.object("assistant", assistant_id)


def list_page(session: Session, tenant: str, page: PageRequest) -> Page[Assistant]:
    return _OF_TENANT.page(session, page, {"tenant": tenant})
