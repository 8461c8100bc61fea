"""A unit of work that changes a run, its steps or its messages notifies the run once it has committed: in this
process (`Database.connect`'s `runs_changed`), and on PostgreSQL to every listening process (`pg_notify` sent
after the commit by `store.notifications.Sender`, heard by `store.notifications.Listener`). Bookkeeping (a lease)
and a rolled back unit of work notify nothing."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from emulator import migrate
from emulator.db import Database
from emulator.store import notifications, runs
from tests.server import postgres_database
from tests.test_store_unit_of_work import _message, _run, _thread

POSTGRES_URL = os.environ.get("EMULATOR_TEST_DATABASE_URL")
MODES = ["postgresql"] if POSTGRES_URL else ["sqlite-lane", "sqlite-worker"]

Unit = Callable[[Callable[[Session], Any]], Any]


class Notified:
    """What the database told this process, and on PostgreSQL what a listening process heard."""

    def __init__(self) -> None:
        self.here: list[str] = []
        self.heard: list[str] = []
        self.lock = threading.Lock()

        self.sender: notifications.Sender | None = None

    def local(self, run_ids: tuple[str, ...]) -> None:
        self.here.extend(run_ids)
        if self.sender is not None:
            self.sender.send(run_ids)


@pytest.fixture(params=MODES)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Unit, Notified, str]]:
    notified = Notified()
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(postgres_database(POSTGRES_URL)) if POSTGRES_URL else f"sqlite:///{tmp_path / 'n.db'}"
        if POSTGRES_URL:
            notified.sender = notifications.Sender(url)
            stack.callback(notified.sender.close)
        db = Database.connect(url, runs_changed=notified.local)
        stack.callback(db.dispose)
        migrate.upgrade(db.engine)
        if request.param == "sqlite-lane":
            yield (lambda work: db.run_inline(work, write=True)), notified, url
        else:
            yield (lambda work: db.run_in_worker(work, write=True)), notified, url


def test_changes_to_a_run_its_steps_and_messages_notify_it_once_committed(
    database: tuple[Unit, Notified, str],
) -> None:
    unit, notified, _url = database
    unit(lambda session: (_thread(session), _run(session)))
    assert notified.here == [], "nobody waits for a run being made"

    def move(session: Session) -> None:
        runs.get_by_id(session, "run_1").status = "in_progress"  # type: ignore[union-attr]

    unit(move)
    unit(_message)
    unit(lambda session: runs.create_step(
        session, id="step_1", tenant="t", run_id="run_1", thread_id="thread_1", assistant_id="asst_1",
        created_at=100, type="message_creation", status="in_progress", step_details={}, metadata_={},
    ))
    assert notified.here == ["run_1", "run_1", "run_1"]


def test_bookkeeping_and_a_rolled_back_unit_of_work_notify_nothing(database: tuple[Unit, Notified, str]) -> None:
    unit, notified, _url = database
    unit(lambda session: (_thread(session), _run(session)))

    def lease(session: Session) -> None:
        run = runs.get_by_id(session, "run_1")
        assert run is not None
        run.lease_until, run.observations = 1e10, 1

    unit(lease)

    def fails(session: Session) -> None:
        runs.get_by_id(session, "run_1").status = "cancelling"  # type: ignore[union-attr]
        raise RuntimeError("the endpoint failed after moving the run")

    with pytest.raises(RuntimeError):
        unit(fails)
    assert notified.here == []


if POSTGRES_URL:  # PostgreSQL only (SQLite serves one process): only in the suite's PostgreSQL pass

    def test_another_process_hears_a_committed_change_and_not_a_rolled_back_one(
        database: tuple[Unit, Notified, str],
    ) -> None:
        unit, _notified, url = database
        unit(lambda session: (_thread(session), _run(session)))
        heard: list[str] = []

        async def scenario() -> None:
            listener = notifications.Listener(url, heard.append, lambda: None)
            await listener.start()
            assert listener.listening.is_set()
            origin, notifications.ORIGIN = notifications.ORIGIN, "another-process"  # as sent by a replica
            try:
                with contextlib.suppress(RuntimeError):
                    await asyncio.to_thread(unit, _cancel_then_fail)
                await asyncio.to_thread(unit, _cancel)
                for _ in range(50):
                    if heard:
                        break
                    await asyncio.sleep(0.05)
                await asyncio.sleep(0.2)
            finally:
                notifications.ORIGIN = origin
                await listener.stop()

        asyncio.run(scenario())
        assert heard == ["run_1"]


def _cancel(session: Session) -> None:
    runs.get_by_id(session, "run_1").status = "cancelling"  # type: ignore[union-attr]


def _cancel_then_fail(session: Session) -> None:
    _cancel(session)
    raise RuntimeError("rolled back")
