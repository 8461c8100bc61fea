"""Statements run on the unit of work's connection, through SQLAlchemy Core or directly on SQLite's.

The ORM's unit of work and identity map cost several times the SQL they run (they were 70% of a run's CPU), so
the store runs Core statements and keeps its own records (`store.records`).

On the SQLite event-loop lane (`db.InlineLane`) the session carries its DB-API connection, and the statements
marked `prepared` skip SQLAlchemy's execution path too: each is compiled once for the dialect (its SQL, the
order of its parameters, the type processors of its parameters and columns) and run on the sqlite3 connection,
in the same transaction. SQLAlchemy's per-execution work costs about ten times a point read's own. Elsewhere
(PostgreSQL, worker threads) the same statements go through SQLAlchemy Core.

Every statement first writes the unit of work's changed records (`commits.write_changes`), so it sees them.
"""
from __future__ import annotations

import json
import weakref
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar, cast

from sqlalchemy import JSON, Select, inspect, select
from sqlalchemy.engine import Dialect, Row
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement, ColumnElement
from sqlalchemy.types import TypeEngine

from emulator.commits import write_changes
from emulator.db import RAW_CONNECTION


def columns(table: Any) -> list[ColumnElement[Any]]:
    """The mapped table's columns, labelled with their attribute names (deferred ones left out: they are read
    only when asked for)."""
    return [
        attribute.columns[0].label(attribute.key)
        for attribute in inspect(table).column_attrs
        if not attribute.deferred
    ]


def select_columns(table: Any, *conditions: Any) -> Select[Any]:
    """The rows of `table` that meet `conditions`, as its columns by attribute name (what a record loads)."""
    return select(*columns(table)).where(*conditions)


class Compiled:
    """A statement compiled once for a dialect with a positional paramstyle, ready for a DB-API cursor."""

    def __init__(self, statement: Executable, dialect: Dialect, column_keys: Sequence[str] | None) -> None:
        clause = cast(ClauseElement, statement)  # every statement we run is a clause (select, insert, update, ...)
        compiled = cast(
            SQLCompiler, clause.compile(dialect=dialect, column_keys=list(column_keys) if column_keys else None)
        )
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
        self.fields: tuple[str, ...] = ()
        self.processors: list[tuple[int, Callable[[Any], Any]]] = []
        """The columns whose values need converting (JSON text, booleans), by position."""
        self.named_processors: tuple[tuple[str, Callable[[Any], Any]], ...] = ()
        """The same by column key (a record converts its values in its own dict)."""
        self.layouts: dict[Any, Any] = {}
        """What a reader of this statement's rows works out once (`records.Table`'s layout), by reader."""
        if columns is not None:
            self.fields = tuple(column.key for column in columns)
            if not all(self.fields):
                raise TypeError(f"a prepared statement's columns need names (label them): {self.sql}")
            self.row = namedtuple("PlainRow", self.fields)  # type: ignore[misc]
            processors = [_result_processor(column.type.dialect_impl(dialect), dialect) for column in columns]
            self.processors = [(index, processor) for index, processor in enumerate(processors) if processor]
            self.named_processors = tuple((self.fields[index], processor) for index, processor in self.processors)

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


_PREPARED: weakref.WeakKeyDictionary[Executable, Compiled | None] = weakref.WeakKeyDictionary()
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
) -> tuple[Any, Compiled] | None:
    """The DB-API connection and compiled form to run `statement` on, or None: run it through SQLAlchemy."""
    raw = session.info.get(RAW_CONNECTION)
    if raw is None or statement not in _PREPARED:
        return None
    compiled = _PREPARED[statement]
    if compiled is None:
        compiled = _PREPARED[statement] = Compiled(statement, raw[1], column_keys)
    return raw[0], compiled


def run(
    session: Session, statement: Executable, params: Mapping[str, Any], column_keys: Sequence[str] | None = None
) -> tuple[Any, Compiled | None]:
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
    result, compiled = run(session, statement, params)
    if compiled is None:
        row: Row[Any] | None = result.first()
        return row
    found = result.fetchone()
    return None if found is None else compiled.rows([found])[0]


def all_rows(session: Session, statement: Select[Any], params: Mapping[str, Any]) -> Sequence[Row[Any]]:
    write_changes(session)
    result, compiled = run(session, statement, params)
    return result.all() if compiled is None else compiled.rows(result.fetchall())


def fetch(
    session: Session, statement: Select[Any], params: Mapping[str, Any], *, one: bool = False
) -> tuple[Sequence[Sequence[Any]], Compiled | None]:
    """The rows of `statement` (the first only, if `one`) without a row object made per row, for a reader that
    converts them itself (`records`): with the compiled form they came through, whose `fields` name their
    values and whose `named_processors` still have to be applied (the SQLite lane's tuples, as sqlite3 gives
    them); else (None) SQLAlchemy's rows, converted."""
    write_changes(session)
    result, compiled = run(session, statement, params)
    if one:
        row = result.first() if compiled is None else result.fetchone()
        return ([] if row is None else [row]), compiled
    return (result.all() if compiled is None else result.fetchall()), compiled


def scalar(session: Session, statement: Select[Any], params: Mapping[str, Any]) -> Any:
    row = first(session, statement, params)
    return None if row is None else row[0]


def execute(session: Session, statement: Executable, params: Mapping[str, Any]) -> int:
    """An INSERT, UPDATE or DELETE that names its values (`.values(...)`); the number of rows it matched."""
    write_changes(session)
    result, _compiled = run(session, statement, params)
    return result.rowcount  # type: ignore[no-any-return]


