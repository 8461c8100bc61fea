"""A run never poisons its reads, and a crash mid-work does not repeat the work forever (`emulator.runs.safety`).

Whatever goes wrong while a read advances a run fails that run once (`server_error`, its open step failed, its
thread freed, logged with the run id and the traceback) and reads keep answering. Work that may crash its worker
(a code cell) is marked before it starts: after one crash the run resumes, after a second it fails.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import storage
from tests.conftest import BETA
from tests.server import RunningServer, postgres_database, run_server

SERVER_ERROR = "The server had an error while processing your request. Sorry about that!"
FENCED_PRINT = "Please run this:\n```python\nprint(open('nums.csv').read())\n```"
KILL_THE_SERVER = "Please run this:\n```python\nimport os\nos.kill(os.getppid(), 9)\n```"


def _code_run(http: httpx.Client, content: str, file_ids: list[str]) -> tuple[str, str]:
    assistant = http.post("/assistants", json={
        "model": "gpt-4o", "tools": [{"type": "code_interpreter"}],
        "tool_resources": {"code_interpreter": {"file_ids": file_ids}},
    }).json()["id"]
    thread = http.post("/threads", json={"messages": [{"role": "user", "content": content}]}).json()["id"]
    created = http.post(f"/threads/{thread}/runs", json={"assistant_id": assistant})
    assert created.status_code == 200, created.text
    return thread, created.json()["id"]


def _damage_the_runs_tools(server: RunningServer, run_id: str) -> None:
    """The run's row holds a function tool without its function (a damaged database): the model call raises."""
    storage.execute(server, "UPDATE runs SET tools = :tools WHERE id = :id", tools='[{"type": "function"}]', id=run_id)


def test_a_run_that_raises_while_advancing_fails_once_and_its_reads_keep_answering(
    http: httpx.Client, server: RunningServer, data_dir: Path
) -> None:
    thread, run_id = _code_run(http, FENCED_PRINT, [])
    _damage_the_runs_tools(server, run_id)
    first = http.get(f"/threads/{thread}/runs/{run_id}")
    assert first.status_code == 200, first.text
    failed = first.json()
    assert failed["status"] == "failed"
    assert failed["last_error"] == {"code": "server_error", "message": SERVER_ERROR}
    assert failed["failed_at"] is not None
    again = http.get(f"/threads/{thread}/runs/{run_id}")
    assert again.status_code == 200 and again.json() == failed, "failed once: a later read changes nothing"
    listed = http.get(f"/threads/{thread}/runs")
    assert listed.status_code == 200 and [run["status"] for run in listed.json()["data"]] == ["failed"]
    steps = http.get(f"/threads/{thread}/runs/{run_id}/steps")
    assert steps.status_code == 200 and steps.json()["data"] == [], "the broken phase left nothing half-written"
    assert http.post(f"/threads/{thread}/messages", json={"role": "user", "content": "next"}).status_code == 200
    log = (data_dir / "server.log").read_text(errors="replace")
    logged = log[log.index(f"run {run_id} failed while advancing") :]
    assert "Traceback" in logged and "KeyError" in logged


def test_a_run_that_breaks_with_a_step_open_fails_that_step_too(
    http: httpx.Client, control: httpx.Client
) -> None:
    """The assistant's in-progress message is deleted while its model answer is awaited: delivering it fails."""
    assert control.post("/latency", json={"ttft_ms": 400}).status_code == 200
    assistant = http.post("/assistants", json={"model": "gpt-4o"}).json()["id"]
    thread = http.post("/threads", json={"messages": [{"role": "user", "content": "hi"}]}).json()["id"]
    run_id = http.post(f"/threads/{thread}/runs", json={"assistant_id": assistant}).json()["id"]
    assert http.get(f"/threads/{thread}/runs/{run_id}").json()["status"] == "in_progress"
    [step] = http.get(f"/threads/{thread}/runs/{run_id}/steps").json()["data"]
    message_id = step["step_details"]["message_creation"]["message_id"]
    assert http.delete(f"/threads/{thread}/messages/{message_id}").status_code == 200
    time.sleep(0.45)
    read = http.get(f"/threads/{thread}/runs/{run_id}")
    assert read.status_code == 200, read.text
    assert read.json()["status"] == "failed"
    assert read.json()["last_error"] == {"code": "server_error", "message": SERVER_ERROR}
    [failed_step] = http.get(f"/threads/{thread}/runs/{run_id}/steps").json()["data"]
    assert failed_step["status"] == "failed" and failed_step["failed_at"] is not None
    assert http.get(f"/threads/{thread}/runs").status_code == 200
    again = http.post(f"/threads/{thread}/runs", json={"assistant_id": assistant})
    assert again.status_code == 200, "the thread was freed"


UNSAFE = {"EMULATOR_UNSAFE_CODE_EXECUTION": "true"}
"""Code runs unsandboxed (as it did before the sandbox): a cell can still kill the server."""
CRASH_WAIT_SECONDS = 30.0


def _get_run(server: RunningServer, key: str, thread: str, run_id: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}", **BETA}
    return httpx.get(f"{server.base_url}/threads/{thread}/runs/{run_id}", headers=headers, timeout=30)


def _read_until_the_server_dies(server: RunningServer, key: str, thread: str, run_id: str) -> list[str]:
    """Read the run until its server dies (its runner runs the cell that kills it); the statuses read before."""
    seen = []
    deadline = time.monotonic() + CRASH_WAIT_SECONDS
    while time.monotonic() < deadline:
        try:
            response = _get_run(server, key, thread, run_id)
        except httpx.TransportError:
            server.process.wait(timeout=10)
            return seen
        assert response.status_code == 200, response.text
        seen.append(response.json()["status"])
        assert seen[-1] in ("queued", "in_progress"), seen
        time.sleep(0.2)
    raise AssertionError(f"the run was not resumed: {seen}")


def _read_until_it_ends(server: RunningServer, key: str, thread: str, run_id: str) -> dict[str, object]:
    deadline = time.monotonic() + CRASH_WAIT_SECONDS
    while time.monotonic() < deadline:
        response = _get_run(server, key, thread, run_id)
        assert response.status_code == 200, response.text
        if response.json()["status"] not in ("queued", "in_progress"):
            return response.json()
        time.sleep(0.2)
    raise AssertionError("the run did not end")


@pytest.fixture
def database() -> Iterator[str | None]:
    """A fresh PostgreSQL database when the suite runs on it (None: the SQLite file in the test's data dir, which
    its servers share). Not the session's: that server's runner would take the cell over (in its sandbox, where
    the cell cannot kill it)."""
    admin_url = os.environ.get("EMULATOR_TEST_DATABASE_URL")
    if not admin_url:
        yield None
        return
    with postgres_database(admin_url) as database_url:
        yield database_url


def test_a_cell_that_kills_the_server_runs_again_once_then_the_run_fails(
    database: str | None, tmp_path: Path
) -> None:
    key = f"sk-crash-{uuid.uuid4().hex}"
    with run_server(tmp_path, database, **UNSAFE) as first:
        headers = {"Authorization": f"Bearer {key}", **BETA}
        with httpx.Client(base_url=first.base_url, headers=headers, timeout=30) as http:
            thread, run_id = _code_run(http, KILL_THE_SERVER, [])
        # The cell kills the server, run by its runner (a read never runs a cell: reads see the run in progress).
        assert set(_read_until_the_server_dies(first, key, thread, run_id)) <= {"in_progress"}
        assert first.process.returncode == -9
    with run_server(tmp_path, database, **UNSAFE) as second:
        _read_until_the_server_dies(second, key, thread, run_id)
        assert second.process.returncode == -9, "resumed once: the cell ran again"
    with run_server(tmp_path, database, **UNSAFE) as third:
        ended = _read_until_it_ends(third, key, thread, run_id)
        assert ended["status"] == "failed"
        assert ended["last_error"]["code"] == "server_error"  # type: ignore[index]
        assert "interrupted 2 times" in ended["last_error"]["message"]  # type: ignore[index]
        assert third.process.poll() is None, "the cell did not run a third time"
        assert httpx.get(f"{third.root_url}/_emulator/health").status_code == 200
        assert _get_run(third, key, thread, run_id).json() == ended


def test_a_resumed_cell_does_not_keep_its_dead_claimants_lease(database: str | None, tmp_path: Path) -> None:
    """The cell kills its first server only: the next server resumes it, and the run then completes without
    waiting for the lease the dead server had taken."""
    key = f"sk-crash-{uuid.uuid4().hex}"
    marker = tmp_path / "killed-once"
    code = (f"import os\nif not os.path.exists({str(marker)!r}):\n    open({str(marker)!r}, 'w').close()\n"
            "    os.kill(os.getppid(), 9)\nprint('second time')")
    with run_server(tmp_path, database, **UNSAFE) as first:
        headers = {"Authorization": f"Bearer {key}", **BETA}
        with httpx.Client(base_url=first.base_url, headers=headers, timeout=30) as http:
            thread, run_id = _code_run(http, f"Run:\n```python\n{code}\n```", [])
        _read_until_the_server_dies(first, key, thread, run_id)
    with run_server(tmp_path, database, **UNSAFE, EMULATOR_LATENCY_TTFT_MS="500") as second:
        ended = _read_until_it_ends(second, key, thread, run_id)  # the answer after the cell takes a later read
        assert (ended["status"], ended["last_error"]) == ("completed", None)
