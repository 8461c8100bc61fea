"""The `unit` fixture of the store's tests: a function run as one unit of work (committed on success) on a
fresh, migrated database, in each mode the server uses: the event loop's lane (on PostgreSQL, a loop of its own
in another thread) and a worker thread, on SQLite or on PostgreSQL (`EMULATOR_TEST_DATABASE_URL`). Import
`unit` into a test module to use it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import anyio.from_thread
import pytest
from sqlalchemy.orm import Session

from emulator import migrate
from emulator.db import Database
from tests.server import postgres_database

T = TypeVar("T")
Unit = Callable[[Callable[[Session], T]], T]

POSTGRES_URL = os.environ.get("EMULATOR_TEST_DATABASE_URL")
MODES = ["postgresql-lane", "postgresql-worker"] if POSTGRES_URL else ["sqlite-lane", "sqlite-worker"]


@pytest.fixture(params=MODES)
def unit(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Unit[Any]]:
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(postgres_database(POSTGRES_URL)) if POSTGRES_URL else f"sqlite:///{tmp_path / 'u.db'}"
        database = Database.connect(url)
        stack.callback(database.dispose)
        migrate.upgrade(database.engine)
        if request.param == "sqlite-lane":
            yield lambda work: database.run_inline(work, write=True)
        elif request.param == "postgresql-lane":
            portal = stack.enter_context(anyio.from_thread.start_blocking_portal())
            stack.callback(portal.call, database.close)
            lane = database.awaiting
            assert lane is not None
            yield lambda work: portal.call(lane.run, work)
        else:
            yield lambda work: database.run_in_worker(work, write=True)
