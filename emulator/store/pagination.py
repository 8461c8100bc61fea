"""Keyset pagination over `seq`: O(limit) whatever the table size, stable when timestamps are equal."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar, overload

from sqlalchemy import Select, bindparam, select
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


class Listing(Generic[Row]):
    """A list's scope (a select of a table filtered to it) and the queries of its pages.

    Built once at import with bind parameters for the scope's values, a listing builds each page query at its
    first use and then only binds values: building a statement costs more than running it. Given a `Table` (and
    a scope that selects its columns, `statements.select_columns`) it gives the unit of work's records. Given a
    mapped class, until every table is read as records: a scope that selects the class gives ORM objects, one
    that selects columns gives plain rows.
    """

    @overload
    def __init__(self: Listing[R], table: Table[R], scoped: Select[Any], *, long_lived: bool = True) -> None: ...

    @overload
    def __init__(self: Listing[Any], table: Any, scoped: Select[Any], *, long_lived: bool = True) -> None: ...

    def __init__(self, table: Any, scoped: Select[Any], *, long_lived: bool = True) -> None:
        self.records: Table[Any] | None = table if isinstance(table, Table) else None
        mapped = table.record.mapped if isinstance(table, Table) else table
        self.table = mapped
        self.scoped = scoped
        self.objects = scoped.column_descriptions[0].get("type") is mapped and len(scoped.column_descriptions) == 1
        self.long_lived = long_lived
        columns = mapped.__table__.c
        self._cursor = self._prepared(scoped.with_only_columns(columns.seq).where(columns.id == bindparam("cursor")))
        self._pages: dict[tuple[bool, bool, bool], Select[Any]] = {}

    def _prepared(self, statement: Select[Any]) -> Select[Any]:
        """A long-lived listing's queries are built once, so they may run directly (`statements.prepared`)."""
        return statements.prepared(statement) if self.long_lived else statement

    def _page_query(self, after: bool, before: bool, descending: bool) -> Select[Any]:
        key = (after, before, descending)
        query = self._pages.get(key)
        if query is None:
            seq = self.table.__table__.c.seq
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

    def page(self, session: Session, page: PageRequest, params: dict[str, Any] | None = None) -> Page[Row]:
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
        if self.objects:
            rows: list[Any] = list(session.scalars(query, values))
        else:
            rows = list(statements.all_rows(session, query, values))
        has_more = len(rows) > page.limit
        rows = rows[: page.limit]
        if self.records is not None:
            rows = self.records.track_all(session, rows)
        if page.before and not page.after:
            rows.reverse()
        return Page(rows=rows, has_more=has_more)


def paginate(session: Session, table: Any, scoped: Select[Any], page: PageRequest) -> Page[Any]:
    """Return one page of `scoped` (a select of `table` already filtered to its scope)."""
    return Listing(table, scoped, long_lived=False).page(session, page)


def select_scoped(table: Any, *conditions: Any) -> Select[Any]:
    return select(table).where(*conditions)
