"""PostgreSQL's event-loop lane (`awaiting_lane.AwaitingLane`, through `lanes.run`): units of work run on the loop's own
thread, many in flight at once, and what must not run there leaves for a worker thread, rolled back.

These drive the real `Database` over a real PostgreSQL database (the suite's PostgreSQL pass only); the HTTP
suites cover the same lane end to end (on PostgreSQL every request's unit of work goes through it).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from emulator import lanes
from emulator.db import Database, on_event_loop, require_worker_thread
from tests.server import postgres_database

POSTGRES_URL = os.environ.get("EMULATOR_TEST_DATABASE_URL")


def _insert(name: str, then: Callable[[], None] = lambda: None) -> Callable[[Session], dict[str, Any]]:
    def work(session: Session) -> dict[str, Any]:
        session.execute(text("INSERT INTO items VALUES (:name)"), {"name": name})
        then()
        return {"thread": threading.get_ident(), "on_loop": on_event_loop()}

    return work


def _names(db: Database) -> list[str]:
    rows = db.run_in_worker(lambda session: list(session.execute(text("SELECT name FROM items ORDER BY name"))),
                            write=False)
    return [row[0] for row in rows]


if POSTGRES_URL:

    @pytest.fixture
    def database() -> Iterator[Database]:
        with postgres_database(POSTGRES_URL) as url:
            db = Database.connect(url, pool_size=4)
            db.run_in_worker(lambda session: session.execute(text("CREATE TABLE items (name TEXT)")), write=True)
            try:
                yield db
            finally:
                db.dispose()

    def on_loop(db: Database, scenario: Callable[[Database], Coroutine[Any, Any, None]]) -> None:
        """`scenario` on an event loop of its own, then the lane's connections closed on that loop."""

        async def run() -> None:
            try:
                await scenario(db)
            finally:
                await db.close()

        asyncio.run(run())

    async def cancelled_after(seconds: float, unit: Coroutine[Any, Any, Any]) -> None:
        """Run `unit` as a task, cancel it after `seconds`, and see the cancellation raised."""
        task = asyncio.create_task(unit)
        await asyncio.sleep(seconds)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    def test_a_unit_of_work_runs_on_the_event_loop_thread(database: Database) -> None:
        async def scenario(database: Database) -> None:
            ran = await lanes.run(database, _insert("a"), write=True)
            assert ran == {"thread": threading.get_ident(), "on_loop": True}
            assert _names(database) == ["a"]

        on_loop(database, scenario)

    def test_units_of_work_are_in_flight_together_on_the_one_thread(database: Database) -> None:
        """Eight units each wait 0.2 s in PostgreSQL: on the loop they overlap (no thread is blocked by one)."""
        async def scenario(database: Database) -> None:
            in_flight, most, threads = 0, 0, set()

            def work(session: Session) -> None:
                nonlocal in_flight, most
                threads.add(threading.get_ident())
                session.execute(text("SELECT 1"))  # the unit of work has its connection
                in_flight += 1
                most = max(most, in_flight)
                session.execute(text("SELECT pg_sleep(0.2)"))
                in_flight -= 1

            await asyncio.gather(*(lanes.run(database, work, write=True) for _ in range(8)))
            assert threads == {threading.get_ident()}
            assert most == 4, "as many in flight as the lane has connections (pool_size=4)"

        on_loop(database, scenario)

    def test_work_that_must_not_block_the_loop_runs_again_in_a_worker_thread(database: Database) -> None:
        async def scenario(database: Database) -> None:
            ran = await lanes.run(database, _insert("b", lambda: require_worker_thread("blocks")), write=True)
            assert ran["thread"] != threading.get_ident()
            assert ran["on_loop"] is False
            assert _names(database) == ["b"], "the attempt on the loop was rolled back"

        on_loop(database, scenario)

    def test_an_error_rolls_the_unit_of_work_back(database: Database) -> None:
        async def scenario(database: Database) -> None:
            def fail() -> None:
                raise ValueError("no")

            with pytest.raises(ValueError, match="no"):
                await lanes.run(database, _insert("c", fail), write=True)
            assert _names(database) == []
            assert (await lanes.run(database, _insert("d"), write=True))["on_loop"] is True
            assert _names(database) == ["d"], "the lane's connection went back clean"

        on_loop(database, scenario)

    def test_a_shielded_unit_of_work_commits_though_its_caller_is_cancelled(database: Database) -> None:
        async def scenario(database: Database) -> None:
            def work(session: Session) -> None:
                session.execute(text("SELECT pg_sleep(0.3)"))
                session.execute(text("INSERT INTO items VALUES ('kept')"))

            await cancelled_after(0.1, lanes.run(database, work, write=True, shield=True))
            assert _names(database) == ["kept"]

        on_loop(database, scenario)

    def test_an_unshielded_unit_of_work_is_rolled_back_when_its_caller_is_cancelled(database: Database) -> None:
        async def scenario(database: Database) -> None:
            def work(session: Session) -> None:
                session.execute(text("INSERT INTO items VALUES ('gone')"))
                session.execute(text("SELECT pg_sleep(0.3)"))

            await cancelled_after(0.1, lanes.run(database, work, write=True))
            assert _names(database) == []
            assert (await lanes.run(database, _insert("after"), write=True))["on_loop"] is True
            assert _names(database) == ["after"]

        on_loop(database, scenario)

    def test_a_unit_of_work_whose_connection_was_closed_runs_again_on_a_new_one(database: Database) -> None:
        """The lane does not ping a connection before use: PostgreSQL ending its backend (a restart, an
        administrator) costs the next unit of work a second attempt, not an error."""

        def backend(session: Session) -> int:
            return int(session.execute(text("SELECT pg_backend_pid()")).scalar_one())

        async def scenario(database: Database) -> None:
            first = await lanes.run(database, backend, write=True)
            database.run_in_worker(lambda session: session.execute(text("SELECT pg_terminate_backend(:pid)"),
                                                                   {"pid": first}), write=True)

            def insert_on_a_backend(session: Session) -> int:
                session.execute(text("INSERT INTO items VALUES ('once')"))
                return backend(session)

            second = await lanes.run(database, insert_on_a_backend, write=True)
            assert second != first
            assert _names(database) == ["once"]

        on_loop(database, scenario)

    def test_a_shielded_unit_of_work_that_leaves_the_loop_commits_though_its_caller_is_cancelled(
        database: Database,
    ) -> None:
        def work(session: Session) -> None:
            if on_event_loop():
                require_worker_thread("blocks")
            session.execute(text("SELECT pg_sleep(0.3)"))
            session.execute(text("INSERT INTO items VALUES ('kept in a worker')"))

        async def scenario(database: Database) -> None:
            await cancelled_after(0.1, lanes.run(database, work, write=True, shield=True))
            assert _names(database) == ["kept in a worker"]

        on_loop(database, scenario)
