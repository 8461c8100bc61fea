"""Two server processes over one database act as one server: clock, runs, cancel and the one-run rule.

The replicas share the session's database: the SQLite file (WAL, several processes) by default, or a fresh
PostgreSQL database when EMULATOR_TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from emulator.testing import RunningServer, run_server

BETA = {"OpenAI-Beta": "assistants=v2"}


@pytest.fixture(scope="module")
def replicas(server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RunningServer]]:
    """The session's server plus a second process on the same database, with a slow model for streams."""
    data_dir: Path = tmp_path_factory.mktemp("replica-b")
    with run_server(data_dir, server.database_url, EMULATOR_LATENCY_TTFT_MS="1500") as second:
        yield [server, second]


@pytest.fixture
def key() -> str:
    return f"sk-replica-{uuid.uuid4().hex}"


def _client(replica: RunningServer, key: str) -> httpx.Client:
    return httpx.Client(base_url=replica.base_url, headers={"Authorization": f"Bearer {key}", **BETA}, timeout=30)


def _thread_and_assistant(http: httpx.Client) -> tuple[str, str]:
    assistant = http.post("/assistants", json={"model": "gpt-4o"}).json()["id"]
    thread = http.post("/threads", json={"messages": [{"role": "user", "content": "hello"}]}).json()["id"]
    return thread, assistant


def test_clock_advanced_on_one_replica_moves_the_other(replicas: list[RunningServer], key: str) -> None:
    first, second = replicas
    auth = {"Authorization": f"Bearer {key}"}
    before = httpx.get(f"{second.root_url}/_emulator/clock", headers=auth).json()["now"]
    httpx.post(f"{first.root_url}/_emulator/clock/advance", json={"seconds": 3600}, headers=auth).raise_for_status()
    after = httpx.get(f"{second.root_url}/_emulator/clock", headers=auth).json()["now"]
    assert 3600 <= after - before < 3600 + 30


def test_run_created_on_one_replica_finishes_when_read_on_the_other(replicas: list[RunningServer], key: str) -> None:
    """Whichever replica advances the run (the first's read, with no latency, or the second's runner, with its
    1.5 s to first token), the other replica's reads see it finish."""
    with _client(replicas[1], key) as b, _client(replicas[0], key) as a:
        thread, assistant = _thread_and_assistant(b)
        run = b.post(f"/threads/{thread}/runs", json={"assistant_id": assistant}).json()
        assert run["status"] == "queued"
        deadline = time.monotonic() + 10
        while (seen := a.get(f"/threads/{thread}/runs/{run['id']}").json())["status"] != "completed":
            assert seen["status"] in ("queued", "in_progress") and time.monotonic() < deadline, seen
            time.sleep(0.1)
        reply = a.get(f"/threads/{thread}/messages", params={"limit": 1}).json()["data"][0]
        assert reply["run_id"] == run["id"] and reply["content"][0]["text"]["value"] == "You said: hello"


def test_cancel_on_one_replica_ends_the_stream_served_by_the_other(replicas: list[RunningServer], key: str) -> None:
    first, slow = replicas
    with _client(slow, key) as b, _client(first, key) as a:
        thread, assistant = _thread_and_assistant(b)
        names: list[str] = []
        cancelled: dict[str, str] = {}
        with b.stream("POST", f"/threads/{thread}/runs", json={"assistant_id": assistant, "stream": True}) as stream:
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    names.append(line.removeprefix("event: "))
                elif line.startswith("data: {") and names[-1] == "thread.message.in_progress" and not cancelled:
                    # The message is open and the model's first token awaited (1.5 s): the cancel lands then.
                    run_id = json.loads(line.removeprefix("data: "))["run_id"]
                    cancelled = a.post(f"/threads/{thread}/runs/{run_id}/cancel").json()
        assert cancelled["status"] == "cancelling"
        tail = names[names.index("thread.run.cancelling") :]
        assert tail == [
            "thread.run.cancelling",
            "thread.message.incomplete",
            "thread.run.step.cancelled",
            "thread.run.cancelled",
            "done",
        ]
        assert "thread.message.delta" not in names, "the cancel landed while the model's first token was awaited"
        final = a.get(f"/threads/{thread}/runs/{cancelled['id']}").json()
        assert final["status"] == "cancelled" and final["cancelled_at"] is not None
        message = a.get(f"/threads/{thread}/messages", params={"limit": 1, "run_id": final["id"]}).json()["data"][0]
        assert message["status"] == "incomplete" and message["incomplete_details"] == {"reason": "run_cancelled"}


def test_runs_raced_across_replicas_leave_exactly_one_active(replicas: list[RunningServer], key: str) -> None:
    latency = httpx.post(f"{replicas[0].root_url}/_emulator/latency", json={"ttft_ms": 1500},
                         headers={"Authorization": f"Bearer {key}"})
    latency.raise_for_status()  # the winner stays active while the others race, whichever replica's runner starts it
    with _client(replicas[0], key) as setup:
        thread, assistant = _thread_and_assistant(setup)
    barrier = threading.Barrier(12)

    def start_run(index: int) -> httpx.Response:
        with _client(replicas[index % 2], key) as http:
            barrier.wait()
            return http.post(f"/threads/{thread}/runs", json={"assistant_id": assistant})

    with ThreadPoolExecutor(max_workers=12) as pool:
        responses = list(pool.map(start_run, range(12)))
    winners = [response.json() for response in responses if response.status_code == 200]
    losers = [response.json() for response in responses if response.status_code != 200]
    assert len(winners) == 1, [response.text for response in responses]
    expected = f"Thread {thread} already has an active run {winners[0]['id']}."
    assert {loser["error"]["message"] for loser in losers} == {expected}
    assert all(response.status_code in (200, 400) for response in responses)
    with _client(replicas[1], key) as http:
        runs = http.get(f"/threads/{thread}/runs").json()["data"]
    assert [run["id"] for run in runs] == [winners[0]["id"]]
