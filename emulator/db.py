"""Engine and session factories for SQLite (embedded default) and PostgreSQL (scale-out).

SQLite runs in WAL mode. Its write transactions start with `BEGIN IMMEDIATE` so that two concurrent writers
queue on the database lock instead of failing half-way on a stale snapshot; reads keep SQLite's deferred
`BEGIN` and never wait for a writer. Within one process, writers first queue on a Python lock: SQLite's busy
handler sleeps in growing steps and serves waiters in no order, which at 32 concurrent writers gave a p99 of
seconds; other processes on the same file still meet `busy_timeout`.

On SQLite a request's unit of work may also run on the event loop itself (`InlineLane`), on one connection
that never waits: the thread hop and the GIL hand-offs of a worker thread cost more than the request's own SQL.
It is taken only when it cannot block: a write needs the process's writer lock free at once (and no thread
waiting for it), the connection's busy timeout is zero, and code that would block (a code_interpreter cell, a
document to parse) asks to leave; in each case the unit of work is rolled back and rerun in a worker thread.

On PostgreSQL a unit of work runs on the event loop too (`awaiting_lane`): the same synchronous code, on
SQLAlchemy's asyncio engine, whose greenlet bridge awaits each statement, so many units of work are in flight on
the one thread. Measured against worker threads (32 clients creating and polling runs, 2 cores): 154 against
107 runs/s, 2 against 450 context switches per run; the threads spent their time handing the GIL to each other
(half of the server's CPU was the kernel switching them). Code that would block leaves as on SQLite, and so
does a unit of work that met a conflict (the worker's retries take it from there). Its connections are not
pinged before use: a unit of work that finds its connection closed runs again on a new one.
"""

from __future__ import annotations

import logging
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from emulator import limits
from emulator.commits import RUNS_CHANGED, RunsChanged, commit, finish, log_transactions, notify_committed
from emulator.db_errors import is_busy, is_conflict

if TYPE_CHECKING:
    from emulator import awaiting_lane

_SQLITE_BUSY_TIMEOUT_MS = 30_000
UNIT_OF_WORK_ATTEMPTS = 3
"""How many times a unit of work meets a conflict with another transaction at most, and how many records
(`RecordThenRetry`) it may ask for, before its error goes up."""
_CONFLICT_PAUSE_SECONDS = (0.005, 0.05)
log = logging.getLogger("emulator.db")

T = TypeVar("T")

_on_event_loop: ContextVar[bool] = ContextVar("on_event_loop", default=False)

RAW_CONNECTION = "emulator.raw_connection"
"""`Session.info` key: (DB-API connection, dialect) of a session whose Core statements may run on that
connection directly (`store.statements`), inside the session's transaction."""

class LeaveEventLoop(Exception):
    """Raised inside an inline unit of work that would have to wait: roll back and rerun it in a worker thread."""


def require_worker_thread(reason: str) -> None:
    """Call before anything that may block for long (a subprocess, parsing a document)."""
    if _on_event_loop.get():
        raise LeaveEventLoop(reason)


class RecordThenRetry(Exception):
    """Raised inside a unit of work that failed in a way another unit of work can record (a run that broke
    while advancing is failed): the unit of work is rolled back, `record` runs in a transaction of its own and
    commits, then the unit of work runs again."""

    def __init__(self, record: Callable[[Session], None], reason: str) -> None:
        super().__init__(reason)
        self.record = record


def normalize_url(url: str) -> str:
    """`postgresql://` means psycopg 3 here, the driver we ship (SQLAlchemy would pick psycopg2)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def is_sqlite_url(url: str) -> bool:
    return make_url(normalize_url(url)).get_backend_name() == "sqlite"


class _WriterLock:
    """The process's SQLite writer lock: threads queue on it; the event loop only takes it when it is free and
    no thread is waiting (so that the loop, which never sleeps on it, cannot starve the threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting = 0
        self._counting = threading.Lock()

    def acquire(self) -> None:
        with self._counting:
            self._waiting += 1
        try:
            self._lock.acquire()
        finally:
            with self._counting:
                self._waiting -= 1

    def try_acquire(self) -> bool:
        return self._waiting == 0 and self._lock.acquire(blocking=False)

    def release(self) -> None:
        # A plain Lock (not RLock): the commit may run on another thread than the one that began.
        self._lock.release()


def _configure_sqlite(engine: Engine, writer_lock: _WriterLock, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        raw = connection.connection.dbapi_connection
        if not connection.get_execution_options().get("sqlite_immediate", False):
            raw.execute("BEGIN")
            return
        if _on_event_loop.get():
            if not writer_lock.try_acquire():
                raise LeaveEventLoop("the writer lock is taken")
        else:
            writer_lock.acquire()
        connection.info["holds_writer_lock"] = True
        try:
            raw.execute("BEGIN IMMEDIATE")
        except BaseException:
            _release(connection)
            raise

    def _release(connection: Any) -> None:
        if connection.info.pop("holds_writer_lock", False):
            writer_lock.release()

    event.listen(engine, "commit", _release)
    event.listen(engine, "rollback", _release)


def _make_sqlite_folder(url: str) -> None:
    parsed = make_url(url)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


POOL_TIMEOUT_SECONDS = 30.0
"""How long a unit of work waits for one of the pool's connections (`limits.DATABASE_POOL_SIZE`) before its
request answers 503."""


def create_db_engine(
    url: str, writer_lock: _WriterLock | None = None, *, pool_size: int = limits.DATABASE_POOL_SIZE
) -> Engine:
    """A pooled engine for worker threads; on SQLite a busy database makes it wait (`busy_timeout`)."""
    url = normalize_url(url)
    if make_url(url).get_backend_name() != "sqlite":
        engine = create_engine(url, pool_size=pool_size, max_overflow=0, pool_timeout=POOL_TIMEOUT_SECONDS,
                               pool_pre_ping=True)
    else:
        _make_sqlite_folder(url)
        engine = create_engine(url, pool_size=64, max_overflow=0, connect_args={"check_same_thread": False})
        _configure_sqlite(engine, writer_lock or _WriterLock(), _SQLITE_BUSY_TIMEOUT_MS)
    log_transactions(engine)
    return engine


def _inline_sqlite_engine(url: str, writer_lock: _WriterLock) -> Engine:
    """The event loop's engine: one connection (the loop runs one unit of work at a time) that never waits."""
    engine = create_engine(normalize_url(url), poolclass=StaticPool, connect_args={"check_same_thread": False})
    _configure_sqlite(engine, writer_lock, 0)
    log_transactions(engine)
    return engine


def _session_factories(
    engine: Engine, runs_changed: RunsChanged | None
) -> tuple[sessionmaker[Session], sessionmaker[Session]]:
    write_engine = engine.execution_options(sqlite_immediate=True) if is_sqlite(engine) else engine
    info = {RUNS_CHANGED: runs_changed}
    return (
        sessionmaker(engine, expire_on_commit=False, autoflush=False, info=info),
        sessionmaker(write_engine, expire_on_commit=False, autoflush=False, info=info),
    )


class _SessionOnFirstUse:
    """A unit of work's session, made when first used. Most requests on the lane run only `store.statements`
    statements, which read the session's `info` (the raw connection) and nothing else; making and closing a
    session costs more than their two point reads."""

    __slots__ = ("_connection", "_session", "info")

    def __init__(self, connection: Connection, info: dict[str, Any]) -> None:
        self._connection = connection
        self._session: Session | None = None
        self.info = info

    def __getattr__(self, name: str) -> Any:
        if self._session is None:
            self._session = Session(bind=self._connection, join_transaction_mode="rollback_only",
                                    expire_on_commit=False, autoflush=False, info=self.info)
            self.info = self._session.info  # the session copied it: one dict from now on (`CHANGES` lives there)
        return getattr(self._session, name)

    def close(self) -> None:
        if self._session is not None:
            self._session.close()


class InlineLane:
    """The event loop's SQLite connection, kept open: each unit of work is a transaction on it with a session
    joined to that transaction. Checking a connection out of a pool and binding a new session to it per request
    cost more than the request's SQL (measured: 190 us against 96 us for two point reads)."""

    def __init__(self, url: str, writer_lock: _WriterLock, runs_changed: RunsChanged | None = None) -> None:
        self.engine = _inline_sqlite_engine(url, writer_lock)
        self._connection: Connection | None = None
        self._runs_changed = runs_changed
        self._info: dict[str, Any] = {}

    def _open(self) -> Connection:
        if self._connection is None or self._connection.closed or self._connection.invalidated:
            self._connection = self.engine.connect()
            raw = self._connection.connection.dbapi_connection
            self._info = {RAW_CONNECTION: (raw, self.engine.dialect), RUNS_CHANGED: self._runs_changed}
        return self._connection

    def run(self, work: Callable[[Session], T], *, write: bool) -> T:
        connection = self._open()
        if connection.get_execution_options().get("sqlite_immediate", False) != write:
            connection.execution_options(sqlite_immediate=write)
        with on_the_event_loop():
            try:
                transaction = connection.begin()
                session = _SessionOnFirstUse(connection, dict(self._info))
                try:
                    try:
                        result = work(cast(Session, session))
                        runs = finish(cast(Session, session))
                    finally:
                        session.close()
                    transaction.commit()
                    notify_committed(cast(Session, session), runs)
                    return result
                except BaseException:
                    if transaction.is_active:
                        transaction.rollback()
                    else:  # a failed COMMIT leaves the connection inside its transaction, holding SQLite's lock
                        self._discard()
                    raise
            except (OperationalError, sqlite3.OperationalError) as error:
                if is_busy(error):
                    raise LeaveEventLoop("the database is busy") from error
                raise

    def _discard(self) -> None:
        """Close the connection (SQLite rolls back what it holds); the next unit of work opens another."""
        if self._connection is not None:
            self._connection.invalidate()
            self._connection = None

    def dispose(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        self.engine.dispose()


@contextmanager
def on_the_event_loop() -> Iterator[None]:
    """Mark what runs inside as a unit of work on an event-loop lane (`require_worker_thread` then leaves it)."""
    token = _on_event_loop.set(True)
    try:
        yield
    finally:
        _on_event_loop.reset(token)


def on_event_loop() -> bool:
    """Whether the caller is a unit of work on an event-loop lane (which must not block)."""
    return _on_event_loop.get()


@dataclass(frozen=True)
class Database:
    """The engine plus two session factories: one for reads, one for transactions that write; and the event
    loop's own lane: `inline` on SQLite, `awaiting` on PostgreSQL."""

    engine: Engine
    reader: sessionmaker[Session]
    writer: sessionmaker[Session]
    inline: InlineLane | None = None
    awaiting: awaiting_lane.AwaitingLane | None = None

    @classmethod
    def connect(
        cls, url: str, *, pool_size: int = limits.DATABASE_POOL_SIZE, runs_changed: RunsChanged | None = None
    ) -> Database:
        """The database at `url`; `pool_size` bounds a server database's connections (`limits.DATABASE_POOL_SIZE`);
        `runs_changed` is told, after each commit, the runs it changed (`runs.hub`)."""
        if not is_sqlite_url(url):
            from emulator import awaiting_lane  # it builds on this module: imported once a database needs it

            engine = create_db_engine(url, pool_size=pool_size)
            return cls(engine, *_session_factories(engine, runs_changed),
                       awaiting=awaiting_lane.AwaitingLane(url, pool_size, runs_changed))
        writer_lock = _WriterLock()
        engine = create_db_engine(url, writer_lock)
        return cls(engine, *_session_factories(engine, runs_changed), InlineLane(url, writer_lock, runs_changed))

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Session]:
        """One unit of work: commit on success, roll back on any error."""
        factory = self.writer if write else self.reader
        with factory() as session:
            try:
                yield session
                commit(session, session.commit)
            except BaseException:
                session.rollback()
                raise

    @property
    def runs_inline(self) -> bool:
        return self.inline is not None

    def run_inline(self, work: Callable[[Session], T], *, write: bool) -> T:
        """`work` in one transaction on the event loop's connection, committed on success.

        Raises `LeaveEventLoop`, with everything rolled back, when the unit of work would have to wait: the
        caller then runs it in a worker thread. Only for databases that `runs_inline`.
        """
        assert self.inline is not None, "no inline lane on this database"
        return self.inline.run(work, write=write)

    def run_in_worker(
        self, work: Callable[[Session], T], *, write: bool, first: RecordThenRetry | None = None
    ) -> T:
        """`work` in one transaction of the calling (worker) thread, committed on success.

        After a conflict with another transaction it runs again (`UNIT_OF_WORK_ATTEMPTS` times in all at most,
        each after a short random pause, so that the two do not meet again); after a `RecordThenRetry`, once its
        record has committed (as many times). `first` is a record to commit before the first run: one that an
        inline attempt raised.
        """
        pending, records, conflicts = first, int(first is not None), 0
        while True:
            try:
                if pending is not None:
                    with self.transaction() as session:
                        pending.record(session)
                    pending = None
                with self.transaction(write=write) as session:
                    return work(session)
            except RecordThenRetry as failure:
                records += 1
                if records > UNIT_OF_WORK_ATTEMPTS:
                    raise
                pending = failure
            except OperationalError as error:
                conflicts += 1
                if not is_conflict(error) or conflicts >= UNIT_OF_WORK_ATTEMPTS:
                    raise
                log.info("unit of work gave way to another transaction (%s); running it again", error.orig)
                time.sleep(random.uniform(*_CONFLICT_PAUSE_SECONDS))

    def dispose(self) -> None:
        """Close the connections; an awaiting lane's are `close`'s (they close on the event loop)."""
        self.engine.dispose()
        if self.inline is not None:
            self.inline.dispose()

    async def close(self) -> None:
        if self.awaiting is not None:
            await self.awaiting.close()
        self.dispose()
