"""Engine and session factories for SQLite (embedded default) and PostgreSQL (scale-out).

SQLite runs in WAL mode. Its write transactions start with `BEGIN IMMEDIATE` so that two concurrent writers
queue on the database lock instead of failing half-way on a stale snapshot; reads keep SQLite's deferred
`BEGIN` and never wait for a writer. Within one process, writers first queue on a Python lock: SQLite's busy
handler sleeps in growing steps and serves waiters in no order, which at 32 concurrent writers gave a p99 of
seconds; other processes on the same file still meet `busy_timeout`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

_SQLITE_BUSY_TIMEOUT_MS = 30_000


def normalize_url(url: str) -> str:
    """`postgresql://` means psycopg 3 here, the driver we ship (SQLAlchemy would pick psycopg2)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    writer_lock = threading.Lock()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if not connection.get_execution_options().get("sqlite_immediate", False):
            connection.exec_driver_sql("BEGIN")
            return
        writer_lock.acquire()
        connection.info["holds_writer_lock"] = True
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            _release(connection)
            raise

    def _release(connection: Any) -> None:
        # A plain Lock (not RLock): the commit may run on another thread than the one that began.
        if connection.info.pop("holds_writer_lock", False):
            writer_lock.release()

    event.listen(engine, "commit", _release)
    event.listen(engine, "rollback", _release)


def create_db_engine(url: str) -> Engine:
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, pool_size=16, max_overflow=48, connect_args={"check_same_thread": False})
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_size=16, max_overflow=48, pool_pre_ping=True)


@dataclass(frozen=True)
class Database:
    """The engine plus two session factories: one for reads, one for transactions that write."""

    engine: Engine
    reader: sessionmaker[Session]
    writer: sessionmaker[Session]

    @classmethod
    def connect(cls, url: str) -> Database:
        engine = create_db_engine(url)
        write_engine = engine.execution_options(sqlite_immediate=True) if is_sqlite(engine) else engine
        return cls(
            engine=engine,
            reader=sessionmaker(engine, expire_on_commit=False, autoflush=False),
            writer=sessionmaker(write_engine, expire_on_commit=False, autoflush=False),
        )

    def session(self, *, write: bool) -> Session:
        """A new session; it touches the database only at its first statement."""
        return (self.writer if write else self.reader)()

    @staticmethod
    def finish(session: Session, *, commit: bool) -> None:
        """Commit (or roll back) and close, whatever happens: the session's connection always goes back."""
        try:
            if commit:
                session.commit()
            else:
                session.rollback()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Session]:
        """One unit of work: commit on success, roll back on any error."""
        factory = self.writer if write else self.reader
        with factory() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def dispose(self) -> None:
        self.engine.dispose()
