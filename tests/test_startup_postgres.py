"""`--database-url` naming a PostgreSQL database that does not exist: created when the user may, otherwise one
line naming the database and the fix (not SQLAlchemy's traceback), and a non-zero exit."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
from sqlalchemy.engine import make_url

from tests.conftest import BETA
from tests.server import free_port, run_server


def _start_and_fail(database_url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("EMULATOR_")}
    return subprocess.run(
        [sys.executable, "-m", "emulator", "--port", str(free_port()), "--database-url", database_url],
        capture_output=True, text=True, timeout=60, env=env, cwd=cwd,
    )


def test_an_unreachable_postgresql_is_one_line_and_a_non_zero_exit(tmp_path: Path) -> None:
    """Port 9 (discard) has no PostgreSQL: one line that says where, no traceback."""
    result = _start_and_fail("postgresql://postgres@127.0.0.1:9/emulator", tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("assistants-emulator: cannot connect to PostgreSQL at 127.0.0.1:9")


SUITE_POSTGRES = os.environ.get("EMULATOR_TEST_DATABASE_URL")
"""The PostgreSQL of the suite's PostgreSQL pass (.ci/run runs it whenever one answers)."""


if SUITE_POSTGRES:
    # Collected in the PostgreSQL pass only, where an unreachable PostgreSQL fails it.

    def _admin() -> psycopg.Connection:
        assert SUITE_POSTGRES is not None
        url = make_url(SUITE_POSTGRES)
        return psycopg.connect(
            host=url.host or "127.0.0.1", port=url.port or 5432, user=url.username or "postgres",
            password=url.password, dbname=url.database or "postgres", autocommit=True,
        )

    def _url(user: str, database: str) -> str:
        assert SUITE_POSTGRES is not None
        url = make_url(SUITE_POSTGRES)
        return url.set(drivername="postgresql", username=user, database=database).render_as_string(
            hide_password=False
        )

    def _exists(database: str) -> bool:
        with _admin() as admin:
            return admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone() is not None

    @contextmanager
    def _dropped_afterwards(database: str, role: str | None = None) -> Iterator[None]:
        try:
            yield
        finally:
            with _admin() as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
                if role is not None:
                    admin.execute(f'DROP ROLE IF EXISTS "{role}"')

    def test_a_database_that_does_not_exist_is_created_and_served(tmp_path: Path) -> None:
        database = f"emulator_fresh_{uuid.uuid4().hex[:10]}"
        user = make_url(SUITE_POSTGRES or "").username or "postgres"
        assert not _exists(database)
        with _dropped_afterwards(database), run_server(tmp_path, _url(user, database)) as running:
            assert _exists(database)
            created = httpx.post(
                f"{running.base_url}/threads", json={}, headers={"Authorization": "Bearer sk-fresh", **BETA}
            )
            assert created.status_code == 200, created.text
            assert created.json()["object"] == "thread"
            log = (tmp_path / "server.log").read_text()
            assert f"created the database named in postgresql+psycopg://{user}@" in log
            assert f"/{database}" in log

    def test_a_user_who_may_not_create_it_gets_one_line_naming_it_and_the_fix(tmp_path: Path) -> None:
        suffix = uuid.uuid4().hex[:10]
        database, role = f"emulator_missing_{suffix}", f"emulator_nocreatedb_{suffix}"
        with _dropped_afterwards(database, role):
            with _admin() as admin:
                admin.execute(f'CREATE ROLE "{role}" LOGIN NOCREATEDB')
            result = _start_and_fail(_url(role, database), tmp_path)
            assert result.returncode == 2
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1, result.stderr
            assert f'database "{database}" does not exist' in lines[0]
            assert f"{role} may not create it" in lines[0]
            assert "createdb -h" in lines[0] and f"ALTER ROLE {role} CREATEDB" in lines[0]
            assert not _exists(database)

    def test_db_upgrade_creates_a_missing_database_too(tmp_path: Path) -> None:
        database = f"emulator_upgraded_{uuid.uuid4().hex[:10]}"
        user = make_url(SUITE_POSTGRES or "").username or "postgres"
        with _dropped_afterwards(database):
            env = {key: value for key, value in os.environ.items() if not key.startswith("EMULATOR_")}
            result = subprocess.run(
                [sys.executable, "-m", "emulator", "db", "upgrade", "--database-url", _url(user, database)],
                capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path,
            )
            assert result.returncode == 0, result.stderr
            assert result.stdout.splitlines()[0].startswith("created the database named in postgresql+psycopg://")
            assert _exists(database)
