"""500 clients race runs on 10 threads over PostgreSQL, on one server and across two replicas: no request
answers a server error (no deadlock, no serialization failure reaches a client) and a thread never has two
active runs.

PostgreSQL only: SQLite serializes its writers, so the row-lock orders this guards cannot conflict there. The
tests exist only in the suite's PostgreSQL pass (as `tests/test_cli.py`'s PostgreSQL upgrade), never skipped.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from emulator.db import Database
from emulator.testing import RunningServer, postgres_database, run_server

BETA = {"OpenAI-Beta": "assistants=v2"}
CLIENTS = 500
THREADS = 10
ROUNDS = 2
"""Each client tries to start a run this many times (a thread that is busy answers 400: that is the race)."""
TIME_LIMIT_SECONDS = 60.0
ACTIVE = frozenset({"queued", "in_progress", "requires_action", "cancelling"})
LIMITS = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=0)
"""A connection per request: on a loaded machine a kept-alive connection can reach the server's 5 s keep-alive
limit between a client's requests, and the server closes it under the next one."""
TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}


@dataclass
class Tally:
    """What the clients saw: every response's status code, and what broke the rules."""

    codes: Counter[int] = field(default_factory=Counter)
    tries: int = 0
    started: int = 0
    errors: list[str] = field(default_factory=list)
    overlaps: list[str] = field(default_factory=list)

    def saw(self, response: httpx.Response) -> httpx.Response:
        self.codes[response.status_code] += 1
        if response.status_code >= 500:
            self.errors.append(f"{response.request.method} {response.request.url.path}: {response.text[:300]}")
        return response

    def figures(self) -> str:
        ok = self.codes[200]
        refused = sum(count for code, count in self.codes.items() if 400 <= code < 500)
        failed = sum(count for code, count in self.codes.items() if code >= 500)
        return f"tries {self.tries}, runs {self.started}, 200s {ok}, 4xx {refused}, 5xx {failed}"


async def _finish(http: httpx.AsyncClient, tally: Tally, thread: str, run: dict[str, object]) -> None:
    """Poll the run to its end, submitting outputs when it asks for them."""
    while run["status"] in ACTIVE:
        await asyncio.sleep(0.01)
        if run["status"] == "requires_action":
            calls = run["required_action"]["submit_tool_outputs"]["tool_calls"]  # type: ignore[index]
            outputs = [{"tool_call_id": call["id"], "output": "42"} for call in calls]
            response = tally.saw(
                await http.post(f"/threads/{thread}/runs/{run['id']}/submit_tool_outputs",
                                json={"tool_outputs": outputs})
            )
            if response.status_code != 200:
                return
        response = tally.saw(await http.get(f"/threads/{thread}/runs/{run['id']}"))
        if response.status_code != 200:
            return
        run = response.json()


async def _client(http: httpx.AsyncClient, index: int, threads: list[str], assistant: str, tally: Tally) -> None:
    thread = threads[index % len(threads)]
    for _ in range(ROUNDS):
        tally.tries += 1
        response = tally.saw(await http.post(f"/threads/{thread}/runs", json={"assistant_id": assistant}))
        if response.status_code == 200:
            tally.started += 1
            await _finish(http, tally, thread, response.json())
        tally.saw(await http.get(f"/threads/{thread}/runs", params={"limit": 5}))
        await asyncio.sleep(0.005 * (index % 7))


async def _watch(base_url: str, key: str, threads: list[str], tally: Tally, stop: asyncio.Event) -> None:
    """List each thread's runs over and over: a listing (one statement) never shows two active runs."""
    headers = {"Authorization": f"Bearer {key}", **BETA}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=60, limits=LIMITS) as http:
        while not stop.is_set():
            for thread in threads:
                response = tally.saw(await http.get(f"/threads/{thread}/runs", params={"limit": 100}))
                if response.status_code != 200:
                    continue
                active = [run["id"] for run in response.json()["data"] if run["status"] in ACTIVE]
                if len(active) > 1:
                    tally.overlaps.append(f"{thread}: {active}")
            await asyncio.sleep(0.05)


async def _race(base_urls: list[str]) -> tuple[Tally, float, str, list[str]]:
    key = f"sk-race-{uuid.uuid4().hex}"
    headers = {"Authorization": f"Bearer {key}", **BETA}
    async with httpx.AsyncClient(base_url=base_urls[0], headers=headers, timeout=60) as setup:
        assistant = (await setup.post("/assistants", json={"model": "gpt-4o", "tools": [TOOL]})).json()["id"]
        threads = []
        for number in range(THREADS):
            # Every other thread asks for the function: its runs wait for outputs (requires_action) in between.
            content = "call lookup please" if number % 2 else "hello"
            created = await setup.post("/threads", json={"messages": [{"role": "user", "content": content}]})
            threads.append(created.json()["id"])
    tally = Tally()
    stop = asyncio.Event()
    # One connection per client (making an httpx client costs ~70 ms: 500 of them would time the test client).
    pools = [httpx.AsyncClient(base_url=url, headers=headers, timeout=60, limits=LIMITS) for url in base_urls]
    began = time.monotonic()
    watchers = [asyncio.create_task(_watch(url, key, threads, tally, stop)) for url in base_urls]
    try:
        await asyncio.gather(
            *(_client(pools[index % len(pools)], index, threads, assistant, tally) for index in range(CLIENTS))
        )
    finally:
        stop.set()
        await asyncio.gather(*watchers)
        for pool in pools:
            await pool.aclose()
    return tally, time.monotonic() - began, key, threads


def _check(tally: Tally, took: float, base_url: str, key: str, threads: list[str], label: str) -> None:
    print(f"\n{label}: {tally.figures()} in {took:.1f} s")
    assert not tally.errors, tally.errors[:5]
    assert set(tally.codes) <= {200, 400}, tally.codes
    assert not tally.overlaps, tally.overlaps[:5]
    assert tally.started >= THREADS, "every thread ran at least one run"
    assert tally.codes[200] > tally.tries, "runs were polled, submitted and listed"
    assert took < TIME_LIMIT_SECONDS
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}", **BETA}, timeout=30) as http:
        for thread in threads:
            runs = http.get(f"/threads/{thread}/runs", params={"limit": 100}).json()["data"]
            assert runs and all(run["status"] == "completed" for run in runs), [run["status"] for run in runs]


SUITE_POSTGRES = os.environ.get("EMULATOR_TEST_DATABASE_URL")


if SUITE_POSTGRES:

    @pytest.fixture(scope="module")
    def second_replica(server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
        data_dir: Path = tmp_path_factory.mktemp("race-replica")
        with run_server(data_dir, server.database_url) as second:
            yield second

    def test_500_clients_racing_runs_on_one_server_get_no_server_error(server: RunningServer) -> None:
        tally, took, key, threads = asyncio.run(_race([server.base_url]))
        _check(tally, took, server.base_url, key, threads, "one server")

    def test_500_clients_racing_runs_across_two_replicas_get_no_server_error(
        server: RunningServer, second_replica: RunningServer
    ) -> None:
        tally, took, key, threads = asyncio.run(_race([server.base_url, second_replica.base_url]))
        _check(tally, took, server.base_url, key, threads, "two replicas")

    def test_a_unit_of_work_chosen_as_a_deadlock_victim_runs_again() -> None:
        """Two units of work lock two rows in opposite orders: PostgreSQL aborts one, and it runs again."""
        assert SUITE_POSTGRES is not None
        with postgres_database(SUITE_POSTGRES) as url:
            db = Database.connect(url)
            try:
                with db.transaction() as session:
                    session.execute(text("CREATE TABLE pair (id INTEGER PRIMARY KEY, hits INTEGER NOT NULL)"))
                    session.execute(text("INSERT INTO pair VALUES (1, 0), (2, 0)"))
                both_hold_one = threading.Barrier(2, timeout=10)
                attempts: Counter[int] = Counter()

                def lock_both(first: int, second: int) -> None:
                    def work(session: Session) -> None:
                        attempts[first] += 1
                        session.execute(text("UPDATE pair SET hits = hits + 1 WHERE id = :id"), {"id": first})
                        if attempts[first] == 1:
                            both_hold_one.wait()
                        session.execute(text("UPDATE pair SET hits = hits + 1 WHERE id = :id"), {"id": second})

                    db.run_in_worker(work, write=True)

                workers = [threading.Thread(target=lock_both, args=order) for order in ((1, 2), (2, 1))]
                for worker in workers:
                    worker.start()
                for worker in workers:
                    worker.join(timeout=30)
                with db.transaction(write=False) as session:
                    hits = dict(session.execute(text("SELECT id, hits FROM pair")).all())
                assert hits == {1: 2, 2: 2}, "both units of work committed, once each"
                assert sorted(attempts.values()) == [1, 2], "the victim ran again, the other once"
            finally:
                db.dispose()
