"""Records: typed rows of a unit of work, their changes written before its next statement and at commit.

A `Record` subclass per table (`store.rows`) declares the table's columns as typed attributes, so a type
checker sees a run's fields. A `Table` inserts and loads rows as records: one per row in a unit of work (the
identity map, by the table's key), attribute sets tracked, the changed columns written by key (one UPDATE)
before the unit of work's next statement and before commit (`commits.write_changes`): the ORM's autoflush, without
its cost. Statements are built once (`statements.prepared`), so on the SQLite lane they run on the sqlite3
connection directly, and their rows become records straight from the driver's tuples (`_builder`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from operator import itemgetter
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import Select, bindparam, event, insert, inspect, update
from sqlalchemy.engine import Row
from sqlalchemy.orm import ORMExecuteState, Session
from sqlalchemy.sql import Executable

from emulator.commits import CHANGES, write_changes
from emulator.store import statements


class Record:
    """One row of a table in a unit of work. Subclasses declare the table's columns (`mapped=` its ORM
    class, which stays the schema of record) as annotated attributes: the declaration is checked against the
    table when the class is made, so the two cannot drift apart."""

    mapped: ClassVar[Any]
    key_names: ClassVar[tuple[str, ...]]
    """The columns that name a row: its primary key, or `id` where the primary key is only the `seq` keyset."""
    column_names: ClassVar[frozenset[str]]

    def __init_subclass__(cls, *, mapped: Any, key: tuple[str, ...] | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        attributes = {a.key for a in inspect(mapped).column_attrs if not a.deferred}
        declared = {name for klass in cls.__mro__ for name in getattr(klass, "__annotations__", {})}
        declared -= {"mapped", "key_names", "column_names"}
        if declared != attributes:
            raise TypeError(
                f"{cls.__name__} is not {mapped.__tablename__}: columns not declared {sorted(attributes - declared)}, "
                f"declared but no column {sorted(declared - attributes)}"
            )
        primary = tuple(column.key for column in mapped.__table__.primary_key.columns)
        cls.mapped, cls.column_names = mapped, frozenset(attributes)
        cls.key_names = key or (("id",) if primary == ("seq",) else primary)

    def __setattr__(self, name: str, value: Any) -> None:
        state = self.__dict__
        if name not in state["_table"].keys:
            raise AttributeError(f"{name!r} is not a column that a record of {state['_table'].name} may change")
        state[name] = value
        changed: set[str] = state["_changed"]
        if not changed:
            state["_dirty"].append(self)
            if changed is _UNCHANGED:
                changed = state["_changed"] = set()
        changed.add(name)

    def __repr__(self) -> str:
        key = ", ".join(f"{name}={self.__dict__.get(name)!r}" for name in self.key_names)
        return f"<{type(self).__name__} {key}>"


R = TypeVar("R", bound=Record)

_UNCHANGED: Any = frozenset()
"""The changed columns of a record never changed (most are only read): its set is made at its first change."""


class Changes:
    """A unit of work's records: one per row (by table and key, as the ORM's identity map), those changed
    since the last write, and the runs whose changes were written (`Table`'s `announces`)."""

    __slots__ = ("dirty", "loaded", "runs")

    def __init__(self) -> None:
        self.loaded: dict[tuple[str, Any], Record] = {}
        self.dirty: list[Record] = []
        self.runs: set[str] = set()

    def write(self, session: Session) -> None:
        """Write the changed records in the order they changed; one that fails stays changed, as do the rest."""
        while self.dirty:
            record = self.dirty[0]
            record.__dict__["_table"].write(session, record)
            del self.dirty[0]

    def take_runs(self) -> tuple[str, ...]:
        """Just before commit: the runs changed since the last commit (`commits.commit` tells them once it has
        committed)."""
        if not self.runs:
            return ()
        runs, self.runs = tuple(self.runs), set()
        return runs


EVERY_RUN = "*"
"""Announced for every run (time moved: any waiter's wait may be over); `runs.hub` wakes every waiter."""


def announce_every_run(session: Session) -> None:
    """When the unit of work commits, every waiter of every run is woken (in every process), as if each run
    had changed: the emulator's time moved, so waits for a first token or an expiry may be over."""
    _changes(session).runs.add(EVERY_RUN)


def announce_runs(session: Session, run_ids: Iterable[str]) -> None:
    """When the unit of work commits, the runs' waiters are woken (in every process), as for a change made
    through their records: for a change made by a statement (their thread deleted)."""
    _changes(session).runs.update(run_ids)


def forget_loaded(session: Session, *, keep: Record) -> None:
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


class Table(Generic[R]):
    """Access to one table through its record class: insert and load rows as records, write their changes.

    A table whose rows belong to a run (`announces`: the column holding the run's id) marks the run changed
    when it inserts one (unless not `announces_inserts`: nobody waits for a run just made) or writes one, unless
    only `quiet` columns changed (bookkeeping nobody waits for, such as a lease):
    the unit of work tells its changed runs once it has committed (`Changes.take_runs`, `commits.commit`), which wakes
    whoever waits for them (`runs.hub`), in this process and the others. Every change to a run, its steps and
    its messages is written here, so this is the one place that sees them all.
    """

    def __init__(
        self, record: type[R], *, announces: str | None = None, announces_inserts: bool = True,
        quiet: frozenset[str] = frozenset(),
    ) -> None:
        mapped = record.mapped
        self.record = record
        self._announces = announces
        self._announced_insert = announces if announces_inserts else None
        self._quiet = quiet
        self.name: str = mapped.__tablename__
        self._table = mapped.__table__
        self._names = {a.key: a.columns[0].name for a in inspect(mapped).column_attrs if not a.deferred}
        self._generated = "seq" in self._names and "seq" not in record.key_names
        self.columns = frozenset(self._names) - ({"seq"} if self._generated else set())
        """The attributes an insert gives (a generated `seq` is the database's)."""
        self.keys = self.columns - set(record.key_names)
        """The attributes a record may change (its changes are written by its key)."""
        self._key = record.key_names
        self._insert = statements.prepared(insert(self._table))
        self._insert_columns = [self._names[key] for key in self.columns]
        self._updates: dict[frozenset[str], Executable] = {}
        self._layouts: dict[Any, _Layout] = {}
        self._loading = type(f"{record.__name__}Loading", (), {"__module__": record.__module__})
        """What a record is made as before it becomes one (`_builder`)."""

    def identity(self, values: Mapping[str, Any]) -> tuple[str, Any]:
        key = self._key
        return (self.name, values[key[0]] if len(key) == 1 else tuple(values[name] for name in key))

    def insert(self, session: Session, values: dict[str, Any]) -> R:
        """Insert one row, given a value for every column but a generated `seq` (no column default applies)."""
        if values.keys() != self.columns:
            raise ValueError(f"an insert into {self.name} needs exactly the columns {sorted(self.columns)}")
        write_changes(session)
        params = {self._names[key]: value for key, value in values.items()}
        result, compiled = statements.run(session, self._insert, params, self._insert_columns)
        state = dict(values)
        if self._generated:
            state["seq"] = result.lastrowid if compiled is not None else result.inserted_primary_key[0]
        changes = _changes(session)
        record = changes.loaded[self.identity(values)] = self._make(changes, state)
        if self._announced_insert is not None and values[self._announced_insert] is not None:
            changes.runs.add(values[self._announced_insert])
        return record

    def _make(self, changes: Changes, values: Mapping[str, Any]) -> R:
        record = object.__new__(self.record)
        state = record.__dict__
        state.update(values)
        # The unit of work's list of changed records, not its `Changes`: a record pointing back at what holds it
        # would make every unit of work a reference cycle, left to the garbage collector instead of freed when
        # the unit of work ends.
        state["_table"], state["_dirty"], state["_changed"] = self, changes.dirty, _UNCHANGED
        return record

    def load(self, session: Session, statement: Select[Any], params: Mapping[str, Any]) -> R | None:
        """The first row of `statement` (which selects this table's columns by attribute name), as the unit of
        work's record of that row."""
        rows, compiled = statements.fetch(session, statement, params, one=True)
        return self._record(session, rows[0], self._layout(rows, compiled)) if rows else None

    def load_with_extras(
        self, session: Session, statement: Select[Any], params: Mapping[str, Any]
    ) -> tuple[R, tuple[Any, ...]] | None:
        """`load` for a statement that also selects columns that are not this table's: the record and the
        values of those columns, in the statement's order."""
        rows, compiled = statements.fetch(session, statement, params, one=True)
        if not rows:
            return None
        layout = self._layout(rows, compiled)
        return self._record(session, rows[0], layout), layout[2](rows[0])

    def load_all(self, session: Session, statement: Select[Any], params: Mapping[str, Any]) -> list[R]:
        rows, compiled = statements.fetch(session, statement, params)
        return self._records(session, rows, compiled)

    def load_some(
        self, session: Session, statement: Select[Any], params: Mapping[str, Any], at_most: int
    ) -> tuple[list[R], bool]:
        """The first `at_most` rows of `statement` as records, and whether it had more (a page of a list)."""
        rows, compiled = statements.fetch(session, statement, params)
        return self._records(session, rows[:at_most], compiled), len(rows) > at_most

    def track(self, session: Session, row: Row[Any]) -> R:
        """The unit of work's record of `row` (which may hold more columns than the table's)."""
        return self._record(session, row, self._layout((row,), None))

    def _record(self, session: Session, row: Sequence[Any], layout: _Layout) -> R:
        """The unit of work's record of the row's key: the one already loaded or inserted (whose values may be
        newer, as with the ORM's identity map), else a new one."""
        changes = _changes(session)
        identity = (self.name, layout[1](row))
        record = changes.loaded.get(identity)
        if record is None:
            record = changes.loaded[identity] = layout[0](row, self, changes.dirty)
        return record  # type: ignore[return-value]  # the table's own records are kept under its name

    def _records(
        self, session: Session, rows: Sequence[Sequence[Any]], compiled: statements.Compiled | None
    ) -> list[R]:
        """`_record` for each row of a statement (as `statements.fetch` gives them)."""
        if not rows:
            return []
        build, key_of, _others = self._layout(rows, compiled)
        changes = _changes(session)
        loaded, name, dirty = changes.loaded, self.name, changes.dirty
        records: list[Any] = []
        for row in rows:
            identity = (name, key_of(row))
            record = loaded.get(identity)
            if record is None:
                record = loaded[identity] = build(row, self, dirty)
            records.append(record)
        return records

    def _layout(self, rows: Sequence[Any], compiled: statements.Compiled | None) -> _Layout:
        """How to read rows of one statement, worked out once: kept with the statement's compiled form, or by
        the rows' fields on SQLAlchemy's path."""
        if compiled is not None:
            layout: _Layout | None = compiled.layouts.get(self)
            if layout is None:
                layout = compiled.layouts[self] = self._layout_of(compiled.fields, dict(compiled.named_processors))
            return layout
        fields = rows[0]._fields
        layout = self._layouts.get(fields)
        if layout is None:
            layout = self._layouts[fields] = self._layout_of(fields, {})
        return layout

    def _layout_of(self, fields: tuple[str, ...], processors: dict[str, Callable[[Any], Any]]) -> _Layout:
        missing = set(self._names) - set(fields)
        if missing:
            raise ValueError(f"a row of {self.name} without the columns {sorted(missing)} cannot be a record")
        if any(name in processors for name in self._key):
            raise TypeError(f"the key of {self.name} must need no conversion: it names the row before it is read")
        key_of = itemgetter(*(fields.index(name) for name in self._key))
        others = [(at, processors.get(field)) for at, field in enumerate(fields) if field not in self._names]
        return _builder(self.record, self._loading, fields, processors), key_of, _picker(others)

    def synchronize(self, session: Session, key: Any, **changed: Any) -> None:
        """A statement changed the row of `key` (its key's value, a tuple for a key of several columns) in the
        database (a conditional UPDATE): the loaded record follows, without being written again."""
        changes: Changes | None = session.info.get(CHANGES)
        record = None if changes is None else changes.loaded.get((self.name, key))
        if record is not None:
            record.__dict__.update(changed)

    def write(self, session: Session, record: Record) -> None:
        """UPDATE the record's changed columns. A row that is gone (deleted under the unit of work, e.g. by a
        concurrent thread delete on PostgreSQL) is an error, as the ORM's StaleDataError, not a change dropped."""
        state = record.__dict__
        changed: set[str] = state["_changed"]
        names = frozenset(changed)
        statement = self._updates.get(names)
        if statement is None:
            statement = self._updates[names] = self._update_of(names)
        params = {f"new_{key}": state[key] for key in names}
        params.update({f"key_{key}": state[key] for key in self._key})
        result, _compiled = statements.run(session, statement, params)
        if result.rowcount != 1:
            key = self.identity(state)[1]
            raise LookupError(f"{self.name} row {key!r} is gone: its changes {sorted(names)} cannot be written")
        changed.clear()
        if self._announces is not None and state[self._announces] is not None and not names <= self._quiet:
            _changes(session).runs.add(state[self._announces])

    def _update_of(self, names: frozenset[str]) -> Executable:
        columns = self._table.c
        values = {
            self._names[key]: bindparam(f"new_{key}", type_=columns[self._names[key]].type) for key in sorted(names)
        }
        where = [columns[self._names[key]] == bindparam(f"key_{key}") for key in self._key]
        return statements.prepared(update(self._table).where(*where).values(values))


_Layout = tuple[Callable[..., Any], Callable[[Sequence[Any]], Any], Callable[[Sequence[Any]], tuple[Any, ...]]]
"""How a table reads rows of one statement: a new record from a row (`_builder`), the row's key (the value of a
one-column key, else the tuple of its values), the values of its columns that are not the table's (`_picker`)."""


def _picker(wanted: Sequence[tuple[int, Callable[[Any], Any] | None]]) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    """A function that gives the values at these positions of a row, each converted when it has a converter."""
    namespace: dict[str, Any] = {f"convert_{at}": convert for at, convert in wanted if convert is not None}
    values = [f"convert_{at}(row[{at}])" if convert is not None else f"row[{at}]" for at, convert in wanted]
    pick: Callable[[Sequence[Any]], tuple[Any, ...]] = _compile(
        f"def pick(row):\n    return ({', '.join(values)}{',' if len(values) == 1 else ''})", namespace
    )
    return pick


def _compile(source: str, namespace: dict[str, Any]) -> Callable[..., Any]:
    """The function that `source` defines (`def name(...)`), its global names from `namespace`."""
    exec(source, namespace)
    function: Callable[..., Any] = namespace[source[4 : source.index("(")]]
    return function


def _builder(
    record: type[Record], loading: type, fields: Sequence[str], processors: Mapping[str, Callable[[Any], Any]]
) -> Any:
    """A function that makes a record from a row of `fields` (a DB-API tuple, or SQLAlchemy's row): `build(row,
    table, dirty)`.

    Reading rows as records is on the path of most requests (a page of a list makes 20), so the record is made
    the cheapest way CPython has: each value stored as a plain attribute (`o.name = row[3]`, converted in
    place where the column needs it) on an object of the plain class `loading`, which has no `__setattr__` and
    so keeps the values inline instead of in a dict, and the object then becomes a record by `__class__`
    assignment (both classes have the same layout). The code is generated per layout, as `dataclasses` does for
    `__init__`: a loop over the fields, or filling the record's `__dict__`, costs about three times as much
    (measured with callgrind: 20,100 instructions against 28,900 per message, the row's JSON included).
    """
    namespace: dict[str, Any] = {
        "new": object.__new__, "loading": loading, "record": record, "unchanged": _UNCHANGED,
        "become": object.__setattr__,
    }
    lines = ["def build(row, table, dirty):", "    o = new(loading)"]
    for at, field in enumerate(fields):
        if field not in record.column_names:  # an attribute name, so safe to write as one
            continue
        if field in processors:
            namespace[f"convert_{at}"] = processors[field]
            lines.append(f"    o.{field} = convert_{at}(row[{at}])")
        else:
            lines.append(f"    o.{field} = row[{at}]")
    lines += [
        "    o._table = table", "    o._dirty = dirty", "    o._changed = unchanged",
        "    become(o, '__class__', record)", "    return o",
    ]
    return _compile("\n".join(lines), namespace)
