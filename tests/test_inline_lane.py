"""The SQLite event-loop lane (`Database.run_inline`): it never waits, and what it leaves behind is rolled back.

These drive the real `Database` over a real SQLite file; the HTTP suites cover the same lane end to end (every
assistants/threads/messages/runs request on SQLite goes through it).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from emulator import migrate, tokens
from emulator.context import NO_SESSION, Ctx
from emulator.db import Database, LeaveEventLoop, require_worker_thread
from emulator.ids import IdFactory
from emulator.settings import Settings
from emulator.store import messages, statements, threads
from emulator.store.records import Record


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    db = Database.connect(f"sqlite:///{tmp_path / 'lane.db'}")
    db.run_in_worker(lambda session: session.execute(text("CREATE TABLE items (name TEXT)")), write=True)
    yield db
    db.dispose()


def _names(db: Database) -> list[str]:
    return db.run_in_worker(
        lambda session: [row[0] for row in session.execute(text("SELECT name FROM items ORDER BY name"))],
        write=False,
    )


def _insert(name: str) -> Callable[[Session], str]:
    def work(session: Session) -> str:
        session.execute(text("INSERT INTO items VALUES (:name)"), {"name": name})
        return name

    return work


def test_a_write_on_the_loop_commits(database: Database) -> None:
    assert database.runs_inline
    assert database.run_inline(_insert("a"), write=True) == "a"
    assert _names(database) == ["a"]


def test_a_write_leaves_the_loop_when_a_thread_holds_the_writer_lock(database: Database) -> None:
    holding, release = threading.Event(), threading.Event()

    def hold_the_lock() -> None:
        def work(session: Session) -> None:
            session.execute(text("INSERT INTO items VALUES ('thread')"))
            holding.set()
            release.wait(10)

        database.run_in_worker(work, write=True)

    worker = threading.Thread(target=hold_the_lock)
    worker.start()
    try:
        assert holding.wait(10)
        with pytest.raises(LeaveEventLoop, match="writer lock"):
            database.run_inline(_insert("loop"), write=True)
    finally:
        release.set()
        worker.join(10)
    assert _names(database) == ["thread"]
    assert database.run_inline(_insert("loop"), write=True) == "loop"


def test_a_write_leaves_the_loop_when_another_process_holds_the_database(database: Database, tmp_path: Path) -> None:
    """Another process's writer (here a second sqlite3 connection) is met as SQLite's busy error, at once."""
    other = sqlite3.connect(tmp_path / "lane.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(LeaveEventLoop, match="busy"):
            database.run_inline(_insert("loop"), write=True)
        assert _names(database) == []
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert database.run_inline(_insert("loop"), write=True) == "loop"


def test_work_that_must_not_block_the_loop_is_rolled_back_and_told_to_leave(database: Database) -> None:
    def work(session: Session) -> None:
        _insert("half-done")(session)
        require_worker_thread("a subprocess")

    with pytest.raises(LeaveEventLoop, match="a subprocess"):
        database.run_inline(work, write=True)
    assert _names(database) == []
    database.run_in_worker(work, write=True)  # in a worker thread the same work is allowed
    assert _names(database) == ["half-done"]


def test_a_tokenizer_is_never_built_on_the_loop(database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokens, "_BUILT", {})
    with pytest.raises(LeaveEventLoop, match="tokenizer"):
        database.run_inline(lambda _session: tokens.count("hello world", "cl100k_base"), write=False)
    assert database.run_in_worker(lambda _session: tokens.count("hello world", "cl100k_base"), write=False) == 2
    assert database.run_inline(lambda _session: tokens.count("hello world", "cl100k_base"), write=False) == 2


def test_a_retry_keeps_what_the_dependencies_planned_and_forgets_the_failed_attempt(database: Database) -> None:
    ran: list[str] = []
    ctx = Ctx(session=NO_SESSION, tenant="t", settings=Settings(), ids=IdFactory(1))
    ctx.after_commit(lambda: ran.append("planned by a dependency"))
    with pytest.raises(RuntimeError, match="transaction is opened by its route"):
        ctx.session.execute(text("SELECT 1"))

    def attempt(session: Session) -> None:
        ctx.begin(session)
        ctx.after_commit(lambda: ran.append("planned by the endpoint"))
        require_worker_thread("a document to parse")

    with pytest.raises(LeaveEventLoop):
        database.run_inline(attempt, write=True)
    database.run_in_worker(lambda session: ctx.begin(session), write=True)
    ctx.committed()
    assert ran == ["planned by a dependency"]


def _columns(record: Record) -> dict[str, Any]:
    return {name: getattr(record, name) for name in sorted(type(record).column_names)}


def test_statements_on_the_raw_connection_read_what_sqlalchemy_reads(tmp_path: Path) -> None:
    """On the lane, `store.statements` runs its statements on the sqlite3 connection with its own compiled form and
    type processing; through SQLAlchemy (a worker thread's session) the same rows must come back."""
    db = Database.connect(f"sqlite:///{tmp_path / 'lane.db'}")
    migrate.upgrade(db.engine)
    content = [{"type": "text", "text": {"value": "héllo", "annotations": []}}]

    def create(session: Session) -> bool:
        thread = threads.create(session, tenant="t", thread_id="thread_1", now=100, tool_resources={}, metadata={})
        messages.create(session, tenant="t", message_id="msg_1", thread_id="thread_1", now=100, role="user",
                        content=content, attachments=[], metadata={"k": "v"})
        threads.touch(thread, 160)
        return statements.RAW_CONNECTION in session.info

    try:
        assert db.run_inline(create, write=True), "the lane's sessions carry their raw connection"

        def read(session: Session) -> tuple[Any, ...]:
            message = messages.get(session, "t", "thread_1", "msg_1")
            thread, clock_offset = threads.get_with_clock(session, "t", "thread_1")
            return _columns(message), message.content, message.metadata_, _columns(thread), clock_offset

        on_the_lane, through_sqlalchemy = db.run_inline(read, write=False), db.run_in_worker(read, write=False)
        assert on_the_lane == through_sqlalchemy
        assert on_the_lane[1] == content and on_the_lane[2] == {"k": "v"}
        assert on_the_lane[3]["last_active_at"] == 160, "the touch went through the raw connection too"
    finally:
        db.dispose()


def test_a_failed_commit_leaves_nothing_locked(database: Database) -> None:
    """A COMMIT that fails (here a deferred foreign key) must not leave the lane's kept-open connection inside
    its transaction: that would hold SQLite's write lock and refuse every later unit of work."""
    database.run_in_worker(
        lambda session: [session.execute(text(statement)) for statement in (
            "CREATE TABLE parents (id TEXT PRIMARY KEY)",
            "CREATE TABLE children (parent TEXT REFERENCES parents (id) DEFERRABLE INITIALLY DEFERRED)",
        )],
        write=True,
    )

    def orphan(session: Session) -> None:
        session.execute(text("INSERT INTO children VALUES ('nobody')"))

    with pytest.raises(IntegrityError):
        database.run_inline(orphan, write=True)
    assert database.run_inline(_insert("after"), write=True) == "after"
    database.run_in_worker(_insert("worker"), write=True)
    assert _names(database) == ["after", "worker"]


def test_changes_written_before_leaving_the_loop_are_rolled_back_and_made_once(tmp_path: Path) -> None:
    """A unit of work whose record changes were already written (a statement followed them) and that then has to
    leave the loop (a code_interpreter cell) is rolled back and run again in a worker thread: its changes land
    once."""
    db = Database.connect(f"sqlite:///{tmp_path / 'leave.db'}")
    migrate.upgrade(db.engine)
    db.run_inline(
        lambda session: threads.create(session, tenant="t", thread_id="thread_1", now=100, tool_resources={},
                                       metadata={}),
        write=True,
    )

    def work(session: Session) -> None:
        thread, _offset = threads.get_with_clock(session, "t", "thread_1", lock=True)
        assert thread is not None
        thread.metadata_ = {"visits": str(int(thread.metadata_.get("visits", "0")) + 1)}
        threads.get_with_clock(session, "t", "thread_1")  # a statement: the change is written now
        require_worker_thread("a code_interpreter cell")

    try:
        with pytest.raises(LeaveEventLoop):
            db.run_inline(work, write=True)
        db.run_in_worker(work, write=True)  # not on the loop: require_worker_thread lets it through
        thread, _offset = db.run_inline(lambda session: threads.get_with_clock(session, "t", "thread_1"), write=False)
        assert thread is not None and thread.metadata_ == {"visits": "1"}
    finally:
        db.dispose()
