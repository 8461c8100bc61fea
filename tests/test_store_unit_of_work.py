"""Records (`store.records.Table`): the runs' storage without the ORM must keep the ORM's guarantees.

A unit of work sees its own changes (written before its next statement, plain or ORM), commits them, loses
them when it fails, holds one record per row, and writes only the columns it changed, so a conditional UPDATE
made meanwhile (the thread's active-run claim) is never overwritten by a stale copy.

On SQLite each test runs on the event-loop lane (statements on the raw sqlite3 connection) and in a worker
thread (through SQLAlchemy); with `EMULATOR_TEST_DATABASE_URL` set, on a fresh PostgreSQL database.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from emulator.commits import write_changes
from emulator.store import messages, records, runs, statements, threads
from emulator.tables import MessageRow
from tests.units_of_work import Unit


def _thread(session: Session, thread_id: str = "thread_1") -> threads.Thread:
    return threads.create(session, tenant="t", thread_id=thread_id, now=100, tool_resources={}, metadata={})


def _message(session: Session, message_id: str = "msg_1", status: str = "in_progress") -> messages.Message:
    return messages.create(
        session, tenant="t", message_id=message_id, thread_id="thread_1", now=100, role="assistant",
        content=[], attachments=[], metadata={}, status=status, run_id="run_1",
    )


def _run(session: Session) -> runs.Run:
    return runs.create(
        session, id="run_1", tenant="t", thread_id="thread_1", assistant_id="asst_1", created_at=100,
        status="queued", model="gpt-4o", instructions="", tools=[], tool_resources={}, metadata_={},
        temperature=None, top_p=None, max_prompt_tokens=None, max_completion_tokens=None,
        truncation_strategy={"type": "auto", "last_messages": None}, tool_choice="auto", parallel_tool_calls=True,
        response_format="auto", reasoning_effort=None, expires_at=700, observations=0, prompt_tokens=0,
        completion_tokens=0,
    )


def _status_of(session: Session, message_id: str) -> str:
    """As a statement reads it from the database (the loaded record would answer from memory)."""
    return statements.scalar(session, select(MessageRow.status).where(MessageRow.id == message_id), {})


def test_a_change_is_seen_by_the_next_statement_and_committed(unit: Unit[Any]) -> None:
    def work(session: Session) -> tuple[str, str]:
        _thread(session)
        message = _message(session)
        message.status = "completed"
        seen_by_plain = _status_of(session, "msg_1")
        message.status = "incomplete"
        seen_by_orm = session.scalar(select(MessageRow.status).where(MessageRow.id == "msg_1"))
        message.status, message.completed_at = "completed", 160  # written at commit: no statement follows
        return seen_by_plain, seen_by_orm

    assert unit(work) == ("completed", "incomplete")
    committed = unit(lambda session: messages.get(session, "t", "thread_1", "msg_1"))
    assert (committed.status, committed.completed_at) == ("completed", 160)


def test_a_failed_unit_of_work_writes_none_of_its_changes(unit: Unit[Any]) -> None:
    unit(lambda session: (_thread(session), _message(session)))

    def fails(session: Session) -> None:
        messages.get(session, "t", "thread_1", "msg_1").status = "completed"
        raise RuntimeError("the endpoint failed after changing a record")

    with pytest.raises(RuntimeError):
        unit(fails)
    assert unit(lambda session: _status_of(session, "msg_1")) == "in_progress"


def test_one_record_per_row_in_a_unit_of_work(unit: Unit[Any]) -> None:
    def work(session: Session) -> None:
        _thread(session)
        created = _run(session)
        assert runs.get(session, "t", "thread_1", "run_1") is created
        assert runs.get_by_id(session, "run_1") is created
        step = runs.create_step(
            session, id="step_1", tenant="t", run_id="run_1", thread_id="thread_1", assistant_id="asst_1",
            created_at=100, type="message_creation", status="in_progress", step_details={}, metadata_={},
        )
        step.status = "completed"
        assert runs.steps_of(session, "run_1") == [step]
        assert runs.get_step(session, "run_1", "step_1") is step
        message = _message(session)
        assert runs.open_message(session, "run_1") is message

    unit(work)
    loaded = unit(lambda session: (runs.get(session, "t", "thread_1", "run_1"), runs.steps_of(session, "run_1")))
    assert loaded[0].status == "queued" and [step.status for step in loaded[1]] == ["completed"]


def test_only_changed_columns_are_written_so_a_claim_made_meanwhile_stays(unit: Unit[Any]) -> None:
    """A record loaded before another statement claimed the thread must not write the claim away."""
    unit(_thread)

    def work(session: Session) -> str | None:
        thread, _offset = threads.get_with_clock(session, "t", "thread_1", lock=True)
        assert thread is not None and thread.active_run_id is None
        session.execute(text("UPDATE threads SET active_run_id = 'run_other' WHERE id = 'thread_1'"))
        thread.metadata_ = {"changed": "after the claim"}
        return thread.active_run_id  # the stale copy: the raw UPDATE did not go through `runs.claim_thread`

    assert unit(work) is None
    thread, _offset = unit(lambda session: threads.get_with_clock(session, "t", "thread_1"))
    assert thread is not None
    assert (thread.active_run_id, thread.metadata_) == ("run_other", {"changed": "after the claim"})


def test_the_active_run_claim_and_release_keep_the_loaded_thread_in_step(unit: Unit[Any]) -> None:
    unit(_thread)

    def work(session: Session) -> list[Any]:
        thread, _offset = threads.get_with_clock(session, "t", "thread_1", lock=True)
        assert thread is not None
        seen = [runs.claim_thread(session, "thread_1", "run_1"), thread.active_run_id]
        seen += [runs.claim_thread(session, "thread_1", "run_2"), thread.active_run_id]
        runs.release_thread(session, "thread_1", "run_2")  # not the holder: nothing changes
        seen.append(thread.active_run_id)
        runs.release_thread(session, "thread_1", "run_1")
        seen.append(thread.active_run_id)
        return seen

    assert unit(work) == [True, "run_1", False, "run_1", "run_1", None]


def test_a_record_refuses_what_is_not_a_column(unit: Unit[Any]) -> None:
    def work(session: Session) -> None:
        thread = _thread(session)
        with pytest.raises(AttributeError, match="'title' is not a column that a record of threads may change"):
            thread.title = "not a column"
        with pytest.raises(AttributeError, match="'id' is not a column"):
            thread.id = "thread_renamed"  # its changes are written by id
        with pytest.raises(ValueError, match="needs exactly the columns"):
            threads.THREADS.insert(session, {"id": "thread_2", "tenant": "t"})
        assert isinstance(thread, records.Record)

    unit(work)


def test_an_absent_json_value_is_sql_null(unit: Unit[Any]) -> None:
    """`None` in a JSON column is SQL NULL (not the JSON text 'null'), whether inserted or written back."""

    def work(session: Session) -> list[Any]:
        _thread(session)
        run = _run(session)
        run.pending_turn = {"kind": "text"}
        write_changes(session)
        run.pending_turn = None
        return list(session.execute(text(
            "SELECT last_error IS NULL, required_action IS NULL, pending_turn IS NULL FROM runs WHERE id = 'run_1'"
        )).one())

    assert unit(work) == [True, True, True]


def test_a_write_that_fails_at_commit_commits_nothing(unit: Unit[Any]) -> None:
    def work(session: Session) -> None:
        _thread(session)
        _message(session).role = None  # NOT NULL: refused when written, at commit

    with pytest.raises(Exception, match=r"NOT NULL|not-null"):
        unit(work)
    assert unit(lambda session: threads.get_with_clock(session, "t", "thread_1")) == (None, None)


def test_a_change_to_a_row_that_is_gone_is_an_error_not_a_silent_loss(unit: Unit[Any]) -> None:
    unit(lambda session: (_thread(session), _message(session)))

    def work(session: Session) -> None:
        message = messages.get(session, "t", "thread_1", "msg_1")
        session.execute(text("DELETE FROM messages WHERE id = 'msg_1'"))
        message.status = "completed"

    with pytest.raises(LookupError, match="messages row 'msg_1' is gone"):
        unit(work)


def test_a_thread_inserted_in_the_unit_of_work_reads_back_with_the_clock(unit: Unit[Any]) -> None:
    def work(session: Session) -> tuple[bool, int | None]:
        created = _thread(session)
        thread, offset = threads.get_with_clock(session, "t", "thread_1", lock=True)
        return thread is created, offset

    assert unit(work) == (True, 0)
