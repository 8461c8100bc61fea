"""The program: `python -m emulator --help`, `assistants-emulator db upgrade`, and SQLite in WAL mode."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from emulator.migrate import alembic_config
from tests.conftest import BETA
from tests.server import RunningServer, postgres_database, run_server
from tests.storage import is_sqlite

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


SUITE_POSTGRES = os.environ.get("EMULATOR_TEST_DATABASE_URL")
"""The PostgreSQL of the suite's PostgreSQL pass (.ci/run runs it whenever one answers)."""


if SUITE_POSTGRES:
    # Collected in the PostgreSQL pass only, where an unreachable PostgreSQL fails it; the SQLite pass has the
    # SQLite test above and nothing to skip.

    def test_db_upgrade_creates_the_schema_on_postgresql() -> None:
        assert SUITE_POSTGRES is not None
        with postgres_database(SUITE_POSTGRES) as url:
            result = subprocess.run(
                [*_console_script(), "db", "upgrade", "--database-url", url],
                capture_output=True, text=True, timeout=120,
            )
            assert result.returncode == 0, result.stderr
            engine = create_engine(url)
            try:
                assert set(inspect(engine).get_table_names()) >= EXPECTED_TABLES
                with engine.connect() as connection:
                    versions = {row[0] for row in connection.execute(text("SELECT version_num FROM alembic_version"))}
                assert versions == heads()
            finally:
                engine.dispose()


def test_a_server_on_sqlite_keeps_its_database_in_wal_mode(tmp_path: Path) -> None:
    """Its own SQLite server, whatever database the session's server uses."""
    with run_server(tmp_path) as running:
        httpx.post(
            f"{running.base_url}/threads", json={}, headers={"Authorization": "Bearer sk-wal", **BETA}
        ).raise_for_status()
        with contextlib.closing(sqlite3.connect(tmp_path / "emulator.sqlite3")) as db:
            assert db.execute("PRAGMA journal_mode").fetchall() == [("wal",)]


def test_startup_prints_where_everything_is(server: RunningServer) -> None:
    """The banner: the version, the base URL, the data dir, the database, the docs, the control plane and one
    line of client code to paste."""
    from emulator import __version__

    log = (server.data_dir / "server.log").read_text()
    assert f"assistants-emulator {__version__}, serving on 127.0.0.1:" in log and "until Ctrl+C" in log
    assert f"  base URL:      {server.base_url}  (any API key; each key is its own tenant)" in log
    assert f"  data dir:      {server.data_dir.resolve()}  (uploaded files)" in log
    backend = "sqlite:///" if is_sqlite(server) else "postgresql+psycopg://"
    assert f"  database:      {backend}" in log, "the banner names the database with its dialect"
    assert f"  API docs:      {server.root_url}/docs" in log
    assert f"  control plane: {server.root_url}/_emulator  (faults, scripts, clock, usage)" in log
    assert f'  client:        client = openai.OpenAI(base_url="{server.base_url}", api_key="sk-local")' in log


def test_the_banner_names_the_default_data_dir_as_holding_the_database(tmp_path: Path) -> None:
    from emulator.__main__ import banner
    from emulator.settings import Settings

    lines = banner(Settings(data_dir=tmp_path, host="0.0.0.0", port=8123))
    assert f"  data dir:      {tmp_path.resolve()}  (database and uploaded files)" in lines
    assert "  base URL:      http://127.0.0.1:8123/v1  (any API key; each key is its own tenant)" in lines


def test_docker_compose_publishes_its_ports_on_the_loopback_only() -> None:
    """A server that accepts any key must not face the network by default."""
    import yaml

    compose = yaml.safe_load((Path(__file__).resolve().parents[1] / "docker-compose.yml").read_text())
    published = [port for service in compose["services"].values() for port in service.get("ports", [])]
    assert published, "the emulators publish their ports"
    assert [port for port in published if not str(port).startswith("127.0.0.1:")] == []
