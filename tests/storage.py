"""Look into the server's database from a test, to prove what the API cannot show (rows really deleted).

On SQLite the file is opened with the standard `sqlite3` module, on PostgreSQL through SQLAlchemy with the
server's own database URL. Queries use `:name` parameters, which both accept.
"""

from __future__ import annotations

import contextlib
import sqlite3
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from emulator.context import tenant_of
from tests.server import RunningServer

__all__ = ["count", "execute", "is_sqlite", "query", "tenant_of"]


def is_sqlite(server: RunningServer) -> bool:
    return make_url(server.database_url).get_backend_name() == "sqlite"


def query(server: RunningServer, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    if is_sqlite(server):
        path = make_url(server.database_url).database
        assert path, server.database_url
        with contextlib.closing(sqlite3.connect(path)) as db:
            return db.execute(sql, params).fetchall()
    engine = create_engine(server.database_url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(sql), params)]
    finally:
        engine.dispose()


def execute(server: RunningServer, sql: str, **params: Any) -> None:
    """Change rows behind the server's back and commit (a damaged database, for the tests of what survives it)."""
    if is_sqlite(server):
        path = make_url(server.database_url).database
        assert path, server.database_url
        with contextlib.closing(sqlite3.connect(path)) as db, db:
            db.execute(sql, params)
        return
    engine = create_engine(server.database_url)
    try:
        with engine.begin() as connection:
            connection.execute(text(sql), params)
    finally:
        engine.dispose()


def count(server: RunningServer, table: str, **where: Any) -> int:
    condition = " AND ".join(f"{column} = :{column}" for column in where) or "1 = 1"
    return query(server, f"SELECT COUNT(*) FROM {table} WHERE {condition}", **where)[0][0]
