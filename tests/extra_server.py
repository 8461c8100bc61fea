"""A second server with its own settings (a small upload limit, an API-key allow-list) for one test module.

It uses the same kind of database as the session's server: a fresh PostgreSQL database when
`EMULATOR_TEST_DATABASE_URL` is set, else a SQLite file in its own data dir.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.server import RunningServer, postgres_database, run_server


@contextmanager
def extra_server(data_dir: Path, **env: str) -> Iterator[RunningServer]:
    admin_url = os.environ.get("EMULATOR_TEST_DATABASE_URL")
    if admin_url:
        with postgres_database(admin_url) as database_url, run_server(data_dir, database_url, **env) as running:
            yield running
    else:
        with run_server(data_dir, **env) as running:
            yield running
