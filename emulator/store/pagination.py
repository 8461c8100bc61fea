"""Keyset pagination over `seq`: O(limit) whatever the table size, stable when timestamps are equal."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from sqlalchemy import Select, bindparam
from sqlalchemy.orm import Session

from emulator.errors import InvalidRequest
from emulator.store import statements
from emulator.store.records import R, Table

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


class Listing(Generic[R]):
    """A list's scope (a select of a table's columns filtered to it, `statements.select_columns`) and the queries
    of its pages, whose rows come back as the unit of work's records.

    Built once at import with bind parameters for the scope's values, a listing builds each page query at its
    first use and then only binds values: building a statement costs more than running it.
    """

    def __init__(self, table: Table[R], scoped: Select[Any], *, long_lived: bool = True) -> None:
        self.records = table
        self.scoped = scoped
        self.long_lived = long_lived
        self._seq = table.record.mapped.__table__.c.seq
        columns = table.record.mapped.__table__.c
        self._cursor = self._prepared(scoped.with_only_columns(columns.seq).where(columns.id == bindparam("cursor")))
        self._pages: dict[tuple[bool, bool, bool], Select[Any]] = {}

    def _prepared(self, statement: Select[Any]) -> Select[Any]:
        """A long-lived listing's queries are built once, so they may run directly (`statements.prepared`)."""
        return statements.prepared(statement) if self.long_lived else statement

    def _page_query(self, after: bool, before: bool, descending: bool) -> Select[Any]:
        key = (after, before, descending)
        query = self._pages.get(key)
        if query is None:
            seq = self._seq
            query = self.scoped
            if after:
                query = query.where(seq < bindparam("after_seq") if descending else seq > bindparam("after_seq"))
            if before:
                query = query.where(seq > bindparam("before_seq") if descending else seq < bindparam("before_seq"))
            walk_descending = descending != (before and not after)
            query = query.order_by(seq.desc() if walk_descending else seq.asc()).limit(bindparam("page_limit"))
            self._pages[key] = query = self._prepared(query)
        return query

    def _cursor_seq(self, session: Session, params: dict[str, Any], cursor: str, param: str) -> int:
        """Resolve a cursor id to its `seq`, within the same scope as the list (tenant, thread, filters)."""
        seq: int | None = statements.scalar(session, self._cursor, {**params, "cursor": cursor})
        if seq is None:
            raise InvalidRequest(f"Invalid '{param}': no object with id '{cursor}' in this list.", param=param)
        return seq

    def page(self, session: Session, page: PageRequest, params: dict[str, Any] | None = None) -> Page[R]:
        """One page, `params` giving the values of the scope's bind parameters.

        With `after` the page continues past the cursor in the list's order; with `before` it is the page that
        ends just before the cursor, still in the list's order.
        """
        params = params or {}
        values = {**params, "page_limit": page.limit + 1}
        if page.after:
            values["after_seq"] = self._cursor_seq(session, params, page.after, "after")
        if page.before:
            values["before_seq"] = self._cursor_seq(session, params, page.before, "before")
        query = self._page_query(bool(page.after), bool(page.before), page.order == "desc")
        rows, has_more = self.records.load_some(session, query, values, page.limit)
        if page.before and not page.after:
            rows.reverse()
        return Page(rows=rows, has_more=has_more)

