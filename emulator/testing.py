"""Start the real emulator (uvicorn in a subprocess, on a free port): for our tests and the pytest plugin.

`run_server(data_dir)` yields a `RunningServer` once `/_emulator/health` answers; `postgres_database(url)`
yields the URL of a fresh database on that PostgreSQL server and drops it afterwards.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
from sqlalchemy.engine import make_url

_STARTUP_SECONDS = 30


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class RunningServer:
    base_url: str
    root_url: str
    database_url: str
    data_dir: Path
    process: subprocess.Popen[bytes]


@contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """A fresh database on the server of `admin_url`, dropped afterwards: tests never share clock or rows."""
    url = make_url(admin_url)
    name = f"emulator_test_{uuid.uuid4().hex[:12]}"
    conninfo = f"host={url.host or '127.0.0.1'} port={url.port or 5432} user={url.username or 'postgres'} " + (
        f"password={url.password} " if url.password else ""
    )
    with psycopg.connect(conninfo + f"dbname={url.database or 'postgres'}", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name, drivername="postgresql+psycopg").render_as_string(hide_password=False)
    finally:
        with psycopg.connect(conninfo + f"dbname={url.database or 'postgres'}", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def run_server(data_dir: Path, database_url: str | None = None, **env: str) -> Iterator[RunningServer]:
    port = free_port()
    database_url = database_url or f"sqlite:///{data_dir / 'emulator.sqlite3'}"
    environment = {
        **os.environ,
        "EMULATOR_DATABASE_URL": database_url,
        "EMULATOR_DATA_DIR": str(data_dir),
        "EMULATOR_LOG_LEVEL": "warning",
        **env,
    }
    log = open(data_dir / "server.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "emulator", "--port", str(port)], env=environment, stdout=log, stderr=log
    )
    root = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(root, process, data_dir)
        yield RunningServer(f"{root}/v1", root, database_url, data_dir, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def _wait_until_healthy(root: str, process: subprocess.Popen[bytes], data_dir: Path) -> None:
    deadline = time.monotonic() + _STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {(data_dir / 'server.log').read_text()}")
        try:
            if httpx.get(f"{root}/_emulator/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"server did not start: {(data_dir / 'server.log').read_text()}")
