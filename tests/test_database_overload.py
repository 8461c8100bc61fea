"""A database that gives the server no connection: the request answers 503 in the error envelope (the SDK tries
it again), not a 500, and the server answers again as soon as connections are to be had.

PostgreSQL only (a role's connection limit is the way to make the database refuse one); the tests exist only in
the suite's PostgreSQL pass, never skipped.
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import openai
import psycopg
import pytest
from sqlalchemy.engine import make_url

from emulator import db_errors as database
from emulator.app import OVERLOADED_MESSAGE
from emulator.testing import RunningServer, run_server

SUITE_POSTGRES = os.environ.get("EMULATOR_TEST_DATABASE_URL")


def _conninfo(admin_url: str, dbname: str | None = None) -> str:
    url = make_url(admin_url)
    return (f"host={url.host or '127.0.0.1'} port={url.port or 5432} user={url.username or 'postgres'} "
            f"dbname={dbname or url.database or 'postgres'}")


if SUITE_POSTGRES:

    @pytest.fixture
    def capped_role() -> Iterator[tuple[str, str]]:
        """A login role owning a fresh database: (role, its database's URL)."""
        assert SUITE_POSTGRES is not None
        role = f"emulator_capped_{uuid.uuid4().hex[:10]}"
        name = f"emulator_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(_conninfo(SUITE_POSTGRES), autocommit=True) as admin:
            admin.execute(f'CREATE ROLE "{role}" LOGIN')
            admin.execute(f'CREATE DATABASE "{name}" OWNER "{role}"')
        url = make_url(SUITE_POSTGRES).set(username=role, password=None, database=name,
                                           drivername="postgresql+psycopg")
        try:
            yield role, url.render_as_string(hide_password=False)
        finally:
            with psycopg.connect(_conninfo(SUITE_POSTGRES), autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                admin.execute(f'DROP ROLE IF EXISTS "{role}"')

    def _refuse_connections(role: str, refuse: bool) -> None:
        """Let the role open no connection (and end the ones it has), or as many as it likes again."""
        assert SUITE_POSTGRES is not None
        with psycopg.connect(_conninfo(SUITE_POSTGRES), autocommit=True) as admin:
            admin.execute(f'ALTER ROLE "{role}" CONNECTION LIMIT {0 if refuse else -1}')
            if refuse:
                admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))

    def test_a_refused_connection_answers_503_and_the_server_recovers(
        capped_role: tuple[str, str], tmp_path: Path
    ) -> None:
        role, url = capped_role
        with run_server(tmp_path, url) as server:
            client = openai.OpenAI(base_url=server.base_url, api_key="sk-capped", max_retries=0)
            assistant = client.beta.assistants.create(model="gpt-4o", name="kept")
            _refuse_connections(role, refuse=True)
            try:
                raw = _get(server, f"/assistants/{assistant.id}")
                assert raw.status_code == 503, raw.text
                assert raw.json() == {"error": {"message": OVERLOADED_MESSAGE, "type": "server_error",
                                                "param": None, "code": None}}
                with pytest.raises(openai.InternalServerError) as refused:
                    client.beta.assistants.create(model="gpt-4o", name="not stored")
                assert refused.value.status_code == 503
            finally:
                _refuse_connections(role, refuse=False)
            again = client.beta.assistants.retrieve(assistant.id)
            assert again.name == "kept"
            names = [listed.name for listed in client.beta.assistants.list()]
            assert names == ["kept"], "the refused create stored nothing"
            log = (tmp_path / "server.log").read_text()
            assert "no database connection to be had: answered 503" in log
            assert "Traceback" not in log

    def test_a_process_opens_at_most_twice_its_pool_size(capped_role: tuple[str, str], tmp_path: Path) -> None:
        """`--database-pool-size 2`: however many requests wait at once, the server holds at most 4 connections,
        and its LISTEN and notifying connections (`store.notifications`) (so replicas can be counted against
        `max_connections`)."""
        role, url = capped_role
        with run_server(tmp_path, url, EMULATOR_DATABASE_POOL_SIZE="2") as server:
            headers = {"Authorization": "Bearer sk-pool", "OpenAI-Beta": "assistants=v2"}
            with httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as http:
                thread = http.post("/threads", json={}).json()["id"]
            async def burst() -> list[int]:
                async with httpx.AsyncClient(base_url=server.base_url, headers=headers, timeout=60) as http:
                    posts = [http.post(f"/threads/{thread}/messages", json={"role": "user", "content": f"m{n}"})
                             for n in range(200)]
                    return [response.status_code for response in await asyncio.gather(*posts)]

            peak = _peak_connections(role, lambda: asyncio.run(burst()))
            assert peak.result == [200] * 200
            assert 1 <= peak.most <= 2 * 2 + 2, peak.most  # the pool size per lane (loop, workers), LISTEN, NOTIFY
            with httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as http:
                listed = http.get(f"/threads/{thread}/messages", params={"limit": 100}).json()["data"]
            assert len(listed) == 100


def _get(server: RunningServer, path: str) -> httpx.Response:
    headers = {"Authorization": "Bearer sk-capped", "OpenAI-Beta": "assistants=v2"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as http:
        return http.get(path)


def test_pool_timeouts_and_refusals_are_overload_other_database_errors_are_not() -> None:
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    class Refused(Exception):
        sqlstate = "53300"

    class Deadlock(Exception):
        sqlstate = "40P01"

    class ConnectFailed(Exception):
        sqlstate = None

    assert database.is_overloaded(PoolTimeout("QueuePool limit reached"))
    assert database.is_overloaded(OperationalError("connect", {}, Refused()))
    assert database.is_overloaded(OperationalError("connect", {}, ConnectFailed("connection failed: FATAL: too many")))
    assert not database.is_overloaded(OperationalError("update", {}, Deadlock()))
    assert not database.is_overloaded(ValueError("not a database error"))


class _Peak:
    result: list[int]
    most: int = 0


def _peak_connections(role: str, work: Callable[[], list[int]]) -> _Peak:
    """`work`'s result, and the most connections the role held at once while it ran (sampled every 5 ms)."""
    assert SUITE_POSTGRES is not None
    peak, done = _Peak(), threading.Event()

    def sample() -> None:
        with psycopg.connect(_conninfo(SUITE_POSTGRES), autocommit=True) as admin:
            while not done.is_set():
                row = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = %s", (role,)).fetchone()
                peak.most = max(peak.most, row[0] if row else 0)
                done.wait(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        peak.result = work()
    finally:
        done.set()
        sampler.join()
    return peak
