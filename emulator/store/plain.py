"""Plain rows: SQLAlchemy Core statements on the session's connection, for the hottest reads and inserts.

The ORM's unit of work and identity map cost several times the SQL they run; a request that only renders rows,
or inserts one it never changes again, does not need them. Rows read here are named like the ORM attributes
(`metadata_`), so the same renderers take either.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Select, insert, inspect, select
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement


def columns(table: Any) -> list[ColumnElement[Any]]:
    """The mapped table's columns, labelled with their attribute names."""
    return [attribute.columns[0].label(attribute.key) for attribute in inspect(table).column_attrs]


def select_plain(table: Any, *conditions: Any) -> Select[Any]:
    return select(*columns(table)).where(*conditions)


def first(session: Session, statement: Select[Any], params: Mapping[str, Any]) -> Row[Any] | None:
    return session.connection().execute(statement, params).first()


def all_rows(session: Session, statement: Select[Any], params: Mapping[str, Any]) -> Sequence[Row[Any]]:
    return session.connection().execute(statement, params).all()


def scalar(session: Session, statement: Select[Any], params: Mapping[str, Any]) -> Any:
    return session.connection().execute(statement, params).scalar()


class Record:
    """An inserted row as the renderers read it: its values as attributes."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.__dict__.update(values)


class Inserter:
    """The INSERT of a mapped table, built once; values are given by attribute name."""

    def __init__(self, table: Any) -> None:
        self._statement = insert(table.__table__)
        self._names = {attribute.key: attribute.columns[0].name for attribute in inspect(table).column_attrs}

    def __call__(self, session: Session, values: dict[str, Any]) -> Record:
        """Insert one row (every column but `seq`) and return it as the renderers read it."""
        session.connection().execute(self._statement, {self._names[key]: value for key, value in values.items()})
        return Record(values)
