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

import psycopg
import pytest
from sqlalchemy.engine import make_url
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


    def test_a_process_sends_news_only_once_another_process_listens(tmp_path: Path) -> None:
        """Alone on its database a process sends nothing; a process that starts listening later is told of the
        next change at once (it said it listens), and so is one that listened first (found when connecting)."""
        assert POSTGRES_URL is not None

        async def scenario(url: str) -> tuple[list[str], list[str], list[str]]:
            observer = await psycopg.AsyncConnection.connect(_libpq(url), autocommit=True)
            await observer.execute(f"LISTEN {notifications.CHANNEL}")
            peers = notifications.Peers()
            sender = notifications.Sender(url, peers)
            db = Database.connect(url, runs_changed=sender.send)
            migrate.upgrade(db.engine)
            await asyncio.to_thread(db.run_in_worker, lambda s: (_thread(s), _run(s)), write=True)
            own = notifications.Listener(url, lambda run_id: None, lambda: None, peers)
            later = notifications.Listener(url, lambda run_id: None, lambda: None, origin="a-later-process")
            try:
                await own.start()
                await asyncio.to_thread(db.run_in_worker, _cancel, write=True)
                alone = await _payloads(observer)
                await later.start()
                await asyncio.sleep(0.2)  # this process's listener hears the later one's greeting
                await asyncio.to_thread(db.run_in_worker, _cancel_again, write=True)
                with_a_later_one = await _payloads(observer)
            finally:
                await own.stop()
                await later.stop()
                sender.close()
                db.dispose()
            first_peers = notifications.Peers()
            first = notifications.Listener(url, lambda run_id: None, lambda: None, origin="a-first-process")
            joining = notifications.Listener(url, lambda run_id: None, lambda: None, first_peers)
            try:
                await first.start()
                await joining.start()
                found_first = ["present"] if first_peers.present else []
            finally:
                await first.stop()
                await joining.stop()
                await observer.close()
            return alone, with_a_later_one, found_first

        with postgres_database(POSTGRES_URL) as url:
            alone, with_a_later_one, found_first = asyncio.run(scenario(url))
        origin = notifications.ORIGIN
        assert alone == [origin], "alone, only its listener's greeting: no news of the run"
        assert with_a_later_one == ["a-later-process", f"{origin} run_1"]
        assert found_first == ["present"]

    async def _payloads(observer: psycopg.AsyncConnection[Any]) -> list[str]:
        """What the observer heard within 0.3 s."""
        heard: list[str] = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.3):
                async for notification in observer.notifies():
                    heard.append(notification.payload)
        return heard

    def _libpq(url: str) -> str:
        return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _cancel_again(session: Session) -> None:
    runs.get_by_id(session, "run_1").status = "cancelled"  # type: ignore[union-attr]


def _cancel(session: Session) -> None:
    runs.get_by_id(session, "run_1").status = "cancelling"  # type: ignore[union-attr]


def _cancel_then_fail(session: Session) -> None:
    _cancel(session)
    raise RuntimeError("rolled back")
