"""The program: `python -m emulator --help`, `assistants-emulator db upgrade`, and SQLite in WAL mode."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from emulator.migrate import alembic_config
from tests.server import RunningServer, postgres_database
from tests.storage import is_sqlite, query

EXPECTED_TABLES = {"alembic_version", "assistants", "threads", "messages", "files", "emulator_clock"}


def heads() -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config()).get_heads())


def test_help_lists_the_options() -> None:
    result = subprocess.run([sys.executable, "-m", "emulator", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for option in ("--host", "--port", "--database-url", "--data-dir"):
        assert option in result.stdout
    assert "EMULATOR_" in result.stdout, "the help says every option is also an environment variable"


def _console_script() -> list[str]:
    found = shutil.which("assistants-emulator")
    return [found] if found else [sys.executable, "-m", "emulator"]


def test_db_upgrade_creates_the_schema_on_sqlite(tmp_path: Path) -> None:
    database = tmp_path / "upgraded.sqlite3"
    url = f"sqlite:///{database}"
    env = {key: value for key, value in os.environ.items() if not key.startswith("EMULATOR_")}
    result = subprocess.run(
        [*_console_script(), "db", "upgrade", "--database-url", url],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert database.exists()
    with contextlib.closing(sqlite3.connect(database)) as db:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        versions = {version for (version,) in db.execute("SELECT version_num FROM alembic_version")}
    assert tables >= EXPECTED_TABLES
    assert versions == heads()
    assert not (tmp_path / "emulator-data").exists(), "nothing written outside the given database"

    again = subprocess.run(
        [*_console_script(), "db", "upgrade", "--database-url", url],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert again.returncode == 0, "upgrading an up-to-date database is a no-op"


def test_db_upgrade_creates_the_schema_on_postgresql() -> None:
    admin_url = os.environ.get("EMULATOR_TEST_DATABASE_URL")
    if not admin_url:
        pytest.skip("EMULATOR_TEST_DATABASE_URL is not set")
    with postgres_database(admin_url) as url:
        result = subprocess.run(
            [*_console_script(), "db", "upgrade", "--database-url", url], capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
        from sqlalchemy import create_engine, inspect, text

        engine = create_engine(url)
        try:
            assert set(inspect(engine).get_table_names()) >= EXPECTED_TABLES
            with engine.connect() as connection:
                versions = {row[0] for row in connection.execute(text("SELECT version_num FROM alembic_version"))}
            assert versions == heads()
        finally:
            engine.dispose()


def test_the_servers_sqlite_database_is_in_wal_mode(server: RunningServer) -> None:
    if not is_sqlite(server):
        pytest.skip("the session's server runs on PostgreSQL")
    assert query(server, "PRAGMA journal_mode") == [("wal",)]


def test_startup_prints_the_base_url_the_database_and_the_version(server: RunningServer) -> None:
    from emulator import __version__

    log = (server.data_dir / "server.log").read_text()
    assert f"assistants-emulator {__version__}" in log
    assert f"base URL: {server.base_url}" in log
    backend = "sqlite:///" if is_sqlite(server) else "postgresql+psycopg://"
    assert f"database: {backend}" in log, "the banner names the database with its dialect"
