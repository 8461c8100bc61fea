"""Fixtures: one real server per test session, one fresh tenant (API key) per test.

By default the server uses a SQLite file in a temporary data dir. With `EMULATOR_TEST_DATABASE_URL` set to
a PostgreSQL URL, the session creates a fresh database on that server and drops it afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from tests.server import RunningServer, postgres_database, run_server
from tests.units_of_work import unit  # noqa: F401 (the store tests' fixture, shared)

BETA = {"OpenAI-Beta": "assistants=v2"}


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data_dir = tmp_path_factory.mktemp("emulator-data")
    admin_url = os.environ.get("EMULATOR_TEST_DATABASE_URL")
    if admin_url:
        with postgres_database(admin_url) as database_url, run_server(data_dir, database_url) as running:
            yield running
    else:
        with run_server(data_dir) as running:
            yield running


@pytest.fixture
def api_key() -> str:
    return f"sk-test-{uuid.uuid4().hex}"


@pytest.fixture
def client(server: RunningServer, api_key: str) -> OpenAI:
    return OpenAI(base_url=server.base_url, api_key=api_key, max_retries=0)


@pytest.fixture
def http(server: RunningServer, api_key: str) -> Iterator[httpx.Client]:
    """Raw HTTP against `/v1`, authenticated as this test's tenant, with the beta header."""
    with httpx.Client(
        base_url=server.base_url, headers={"Authorization": f"Bearer {api_key}", **BETA}, timeout=30
    ) as session:
        yield session


@pytest.fixture
def control(server: RunningServer, api_key: str) -> Iterator[httpx.Client]:
    """Raw HTTP against the `/_emulator` control plane."""
    with httpx.Client(
        base_url=f"{server.root_url}/_emulator", headers={"Authorization": f"Bearer {api_key}"}, timeout=30
    ) as session:
        yield session


@pytest.fixture
def data_dir(server: RunningServer) -> Path:
    return server.data_dir
