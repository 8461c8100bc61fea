"""Plain rows and tracked records: SQLAlchemy Core statements on the session's connection, without the ORM.

The ORM's unit of work and identity map cost several times the SQL they run (they were 70% of a run's CPU).
Here a request reads plain rows to render them, and the rows it changes are `Tracked` records of a `Table`: one
per row in a unit of work (the identity map), their changed columns written by id before the unit of work's
next statement (plain or through the session) and before commit (the autoflush). Rows and records are named
like the ORM attributes (`metadata_`), so the same renderers take either.

On the SQLite event-loop lane (`db.InlineLane`) the session carries its DB-API connection, and the statements
marked `prepared` skip SQLAlchemy's execution path too: each is compiled once for the dialect (its SQL, the
order of its parameters, the type processors of its parameters and columns) and run on the sqlite3 connection,
in the same transaction. SQLAlchemy's per-execution work costs about ten times a point read's own. Elsewhere
(PostgreSQL, worker threads) the same statements go through SQLAlchemy Core.
"""
from __future__ import annotations

import json
import weakref
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import JSON, Select, bindparam, event, insert, inspect, select, update
from sqlalchemy.engine import Dialect, Row
from sqlalchemy.orm import ORMExecuteState, Session
from sqlalchemy.sql import Executable
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeEngine

from emulator.db import CHANGES, RAW_CONNECTION, write_changes


def columns(table: Any) -> list[ColumnElement[Any]]:
    """The mapped table's columns, labelled with their attribute names."""
    return [attribute.columns[0].label(attribute.key) for attribute in inspect(table).column_attrs]


def select_plain(table: Any, *conditions: Any) -> Select[Any]:
    return select(*columns(table)).where(*conditions)


class _Compiled:
    """A statement compiled once for a dialect with a positional paramstyle, ready for a DB-API cursor."""

    def __init__(self, statement: Executable, dialect: Dialect, column_keys: Sequence[str] | None) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=list(column_keys) if column_keys else None)
        if compiled.positiontup is None or compiled.literal_execute_params or compiled.post_compile_params:
            raise TypeError("only positional statements without post-compile parameters are prepared")
        self.sql = compiled.string
        self.params: list[tuple[str, Any, Callable[[Any], Any] | None]] = []
        for name in compiled.positiontup:
            bind = compiled.binds[name]
            default = _REQUIRED if bind.required else bind.effective_value
            self.params.append((name, default, bind.type.dialect_impl(dialect).bind_processor(dialect)))
        columns = getattr(statement, "selected_columns", None)
        self.row: Any = None
        self.processors: list[tuple[int, Callable[[Any], Any]]] = []
        """The columns whose values need converting (JSON text, booleans), by position."""
        if columns is not None:
            self.row = namedtuple("PlainRow", [column.key for column in columns])  # type: ignore[misc]
            processors = [_result_processor(column.type.dialect_impl(dialect), dialect) for column in columns]
            self.processors = [(index, processor) for index, processor in enumerate(processors) if processor]

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        out = []
        for name, default, processor in self.params:
            value = params.get(name, default)
            if value is _REQUIRED:
                raise KeyError(f"a value is required for bind parameter {name!r}")
            out.append(processor(value) if processor is not None else value)
        return out

    def rows(self, raw: Sequence[Any]) -> list[Any]:
        if not self.processors:
            return [self.row._make(values) for values in raw]
        out = []
        for values in raw:
            converted = list(values)
            for index, processor in self.processors:
                converted[index] = processor(converted[index])
            out.append(self.row._make(converted))
        return out


_EMPTY_JSON: dict[str, Callable[[], Any]] = {"{}": dict, "[]": list, "null": lambda: None}


_DECODER = json.JSONDecoder()


def _loads(value: str | None) -> Any:
    """JSON text, as the default serializer wrote it (no surrounding whitespace), to a value; most stored
    metadata, attachments and details are empty."""
    if value is None:
        return None
    empty = _EMPTY_JSON.get(value)
    if empty is not None:
        return empty()
    try:
        decoded, end = _DECODER.raw_decode(value)
    except json.JSONDecodeError:  # leading whitespace: not written by us, but still JSON
        return json.loads(value)
    return decoded if end == len(value) else json.loads(value)


def _result_processor(type_: TypeEngine[Any], dialect: Dialect) -> Callable[[Any], Any] | None:
    """SQLAlchemy's processor for a column of `type_`, but plain `json.loads` for JSON (the column holds what
    the default serializer wrote; SQLAlchemy's wraps it in two more calls)."""
    if isinstance(type_, JSON):
        return _loads
    return type_.result_processor(dialect, None)


_PREPARED: weakref.WeakKeyDictionary[Executable, _Compiled | None] = weakref.WeakKeyDictionary()
"""Statements built once (at import, or by a long-lived `Listing`) that may run on a raw connection, with their
compiled form once made (None until the first use). A statement built per call is left to SQLAlchemy, whose
cache suits it: compiling it here each time would cost more than it saves."""

_REQUIRED: Any = object()
S = TypeVar("S", bound=Executable)


def prepared(statement: S) -> S:
    """Mark a statement built once as one to run directly on the SQLite lane's connection."""
    _PREPARED.setdefault(statement, None)
    return statement


def _direct(
    session: Session, statement: Executable, column_keys: Sequence[str] | None = None
) -> tuple[Any, _Compiled] | None:
    """The DB-API connection and compiled form to run `statement` on, or None: run it through SQLAlchemy."""
    raw = session.info.get(RAW_CONNECTION)
    if raw is None or statement not in _PREPARED:
        return None
    compiled = _PREPARED[statement]
    if compiled is None:
        compiled = _PREPARED[statement] = _Compiled(statement, raw[1], column_keys)
    return raw[0], compiled


def _run(
    session: Session, statement: Executable, params: Mapping[str, Any], column_keys: Sequence[str] | None = None
) -> tuple[Any, _Compiled | None]:
    """Execute on the raw connection when the statement is prepared and the session has one, else through
    SQLAlchemy: (the cursor, the compiled form) or (SQLAlchemy's result, None)."""
    direct = _direct(session, statement, column_keys)
    if direct is None:
        return session.connection().execute(statement, params), None
    connection, compiled = direct
    return connection.execute(compiled.sql, compiled.arguments(params)), compiled


def on_sqlite(session: Session) -> bool:
    """Whether the session's database is SQLite, without making the lane's session (`db._SessionOnFirstUse`)."""
    raw = session.info.get(RAW_CONNECTION)
    dialect: Dialect = raw[1] if raw is not None else session.get_bind().dialect
    return dialect.name == "sqlite"


def first(session: Session, statement: Select[Any], params: Mapping[str, Any]) -> Row[Any] | None:
    write_changes(session)
    result, compiled = _run(session, statement, params)
    if compiled is None:
        return result.first()
    found = result.fetchone()
    return None if found is None else compiled.rows([found])[0]


def all_rows(session: Session, statement: Select[Any], params: Mapping[str, Any]) -> Sequence[Row[Any]]:
    write_changes(session)
    result, compiled = _run(session, statement, params)
    return result.all() if compiled is None else compiled.rows(result.fetchall())


def scalar(session: Session, statement: Select[Any], params: Mapping[str, Any]) -> Any:
    row = first(session, statement, params)
    return None if row is None else row[0]


def execute(session: Session, statement: Executable, params: Mapping[str, Any]) -> int:
    """An INSERT, UPDATE or DELETE that names its values (`.values(...)`); the number of rows it matched."""
    write_changes(session)
    result, _compiled = _run(session, statement, params)
    return result.rowcount  # type: ignore[no-any-return]


class Tracked:
    """A row loaded or inserted through a `Table` in this unit of work: setting one of its column attributes
    marks it changed, and the unit of work's `Changes` writes it (one UPDATE by id, of the changed columns only)
    before the session's next statement and before commit: the ORM's autoflush, without its cost."""

    def __init__(self, table: Table, changes: Changes, values: Mapping[str, Any]) -> None:
        state = self.__dict__
        state.update(values)
        state["_table"], state["_changes"], state["_changed"] = table, changes, set()

    def __setattr__(self, name: str, value: Any) -> None:
        state = self.__dict__
        if name not in state["_table"].keys:
            raise AttributeError(f"{name!r} is not a column that a record of {state['_table'].name} may change")
        state[name] = value
        changed: set[str] = state["_changed"]
        if not changed:
            state["_changes"].dirty.append(self)
        changed.add(name)


class Changes:
    """A unit of work's tracked records: one per row (by table and id, as the ORM's identity map) and those
    changed since the last write."""

    __slots__ = ("dirty", "loaded")

    def __init__(self) -> None:
        self.loaded: dict[tuple[str, str], Tracked] = {}
        self.dirty: list[Tracked] = []

    def write(self, session: Session) -> None:
        """Write the changed records in the order they changed; one that fails stays changed, as do the rest."""
        while self.dirty:
            record = self.dirty[0]
            record.__dict__["_table"].write(session, record)
            del self.dirty[0]


def forget_loaded(session: Session, *, keep: Tracked) -> None:
    """The unit of work committed part of its work and goes on in a new transaction: its records (but `keep`,
    which the caller reads again) may be stale, and a later load reads its row afresh."""
    changes: Changes | None = session.info.get(CHANGES)
    if changes is not None:
        changes.loaded = {key: record for key, record in changes.loaded.items() if record is keep}


def _changes(session: Session) -> Changes:
    changes: Changes | None = session.info.get(CHANGES)
    if changes is None:
        changes = session.info[CHANGES] = Changes()
    return changes


@event.listens_for(Session, "do_orm_execute")
def _write_changes_first(state: ORMExecuteState) -> None:
    write_changes(state.session)


class Table:
    """Plain access to one mapped table: insert and load rows as `Tracked` records, write their changes."""

    def __init__(self, mapped: Any) -> None:
        self.name: str = mapped.__tablename__
        self._table = mapped.__table__
        self._names = {attribute.key: attribute.columns[0].name for attribute in inspect(mapped).column_attrs}
        self.columns = frozenset(self._names) - {"seq"}
        """The attributes an insert gives (`seq` is the database's)."""
        self.keys = self.columns - {"id"}
        """The attributes a record may change (its changes are written by `id`)."""
        self._insert = prepared(insert(self._table))
        self._insert_columns = [self._names[key] for key in self.columns]
        self._updates: dict[frozenset[str], Executable] = {}

    def insert(self, session: Session, values: dict[str, Any]) -> Tracked:
        """Insert one row, given a value for every column but `seq` (no column default applies)."""
        if values.keys() != self.columns:
            raise ValueError(f"an insert into {self.name} needs exactly the columns {sorted(self.columns)}")
        write_changes(session)
        _run(session, self._insert, {self._names[key]: value for key, value in values.items()}, self._insert_columns)
        changes = _changes(session)
        record = changes.loaded[(self.name, values["id"])] = Tracked(self, changes, values)
        return record

    def load(self, session: Session, statement: Select[Any], params: Mapping[str, Any]) -> Tracked | None:
        """The first row of `statement` (which selects this table's columns by attribute name), as the unit of
        work's record of that row."""
        row = first(session, statement, params)
        return None if row is None else self.track(session, row)

    def load_all(self, session: Session, statement: Select[Any], params: Mapping[str, Any]) -> list[Tracked]:
        return [self.track(session, row) for row in all_rows(session, statement, params)]

    def track(self, session: Session, row: Row[Any]) -> Tracked:
        """The unit of work's record of `row`: the one already loaded or inserted (whose values may be newer,
        as with the ORM's identity map), else a new record of the row's column values."""
        changes = _changes(session)
        key = (self.name, row.id)
        record = changes.loaded.get(key)
        if record is None:
            values = {name: value for name, value in row._asdict().items() if name in self.columns or name == "seq"}
            record = changes.loaded[key] = Tracked(self, changes, values)
        return record

    def synchronize(self, session: Session, row_id: str, **values: Any) -> None:
        """A statement changed the row in the database (a conditional UPDATE): the loaded record follows,
        without being written again."""
        changes: Changes | None = session.info.get(CHANGES)
        record = None if changes is None else changes.loaded.get((self.name, row_id))
        if record is not None:
            record.__dict__.update(values)

    def write(self, session: Session, record: Tracked) -> None:
        """UPDATE the record's changed columns. A row that is gone (deleted under the unit of work, e.g. by a
        concurrent thread delete on PostgreSQL) is an error, as the ORM's StaleDataError, not a change dropped."""
        changed: set[str] = record.__dict__["_changed"]
        names = frozenset(changed)
        statement = self._updates.get(names)
        if statement is None:
            statement = self._updates[names] = self._update_of(names)
        params = {f"new_{key}": record.__dict__[key] for key in names}
        params["row_id"] = record.id
        result, _compiled = _run(session, statement, params)
        if result.rowcount != 1:
            raise LookupError(f"{self.name} row {record.id!r} is gone: its changes {sorted(names)} cannot be written")
        changed.clear()

    def _update_of(self, names: frozenset[str]) -> Executable:
        columns = self._table.c
        values = {
            self._names[key]: bindparam(f"new_{key}", type_=columns[self._names[key]].type) for key in sorted(names)
        }
        return prepared(update(self._table).where(columns.id == bindparam("row_id")).values(values))
