"""Keyset pagination over `seq`: O(limit) whatever the table size, stable when timestamps are equal."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from emulator.errors import InvalidRequest

Row = TypeVar("Row")
Order = Literal["asc", "desc"]


@dataclass(frozen=True)
class PageRequest:
    limit: int
    order: Order
    after: str | None = None
    before: str | None = None


@dataclass(frozen=True)
class Page(Generic[Row]):
    rows: Sequence[Row]
    has_more: bool


def _cursor_seq(session: Session, scoped: Select[Any], table: Any, cursor: str, param: str) -> int:
    """Resolve a cursor id to its `seq`, within the same scope as the list (tenant, thread, filters)."""
    seq = session.scalar(scoped.with_only_columns(table.seq).where(table.id == cursor))
    if seq is None:
        raise InvalidRequest(f"Invalid '{param}': no object with id '{cursor}' in this list.", param=param)
    return seq


def paginate(session: Session, table: Any, scoped: Select[Any], page: PageRequest) -> Page[Any]:
    """Return one page of `scoped` (a select of `table` already filtered to its scope).

    With `after` the page continues past the cursor in the list's order; with `before` it is the page that
    ends just before the cursor, still in the list's order.
    """
    descending = page.order == "desc"
    query = scoped
    backwards = False
    if page.after:
        seq = _cursor_seq(session, scoped, table, page.after, "after")
        query = query.where(table.seq < seq if descending else table.seq > seq)
    if page.before:
        seq = _cursor_seq(session, scoped, table, page.before, "before")
        query = query.where(table.seq > seq if descending else table.seq < seq)
        backwards = not page.after
    walk_descending = descending != backwards
    query = query.order_by(table.seq.desc() if walk_descending else table.seq.asc()).limit(page.limit + 1)
    rows = list(session.scalars(query))
    has_more = len(rows) > page.limit
    rows = rows[: page.limit]
    if backwards:
        rows.reverse()
    return Page(rows=rows, has_more=has_more)


def select_scoped(table: Any, *conditions: Any) -> Select[Any]:
    return select(table).where(*conditions)
