"""Runs advance on their own (`runs.runner`): a run nobody reads completes, a run whose streaming process is
killed is finished by another replica's runner within seconds, and a `polls:N` policy keeps runs for reads.

What proves that no read moved a run is the database itself (`tests.storage.query`): its status, and its
`observations`, which every read that advances a run counts.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from tests.conftest import BETA
from tests.server import RunningServer, postgres_database, run_server
from tests.storage import query

STREAM_WAIT_MS = 3000


def _stored(server: RunningServer, run_id: str) -> tuple[str, int, int | None]:
    ((status, observations, completed_at),) = query(
        server, "SELECT status, observations, completed_at FROM runs WHERE id = :id", id=run_id
    )
    return status, observations, completed_at


def _until_stored(server: RunningServer, run_id: str, status: str, seconds: float) -> float:
    """Seconds until the database shows the run in `status` (looked at 10 times a second, never through the
    API); fails after `seconds`."""
    started = time.monotonic()
    while _stored(server, run_id)[0] != status:
        assert time.monotonic() - started < seconds, _stored(server, run_id)
        time.sleep(0.1)
    return time.monotonic() - started


def test_a_run_nobody_reads_completes_on_its_own(
    client: OpenAI, server: RunningServer, control: httpx.Client
) -> None:
    control.post("/latency", json={"ttft_ms": 400}).raise_for_status()
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hello"}])
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "queued"
    _until_stored(server, run.id, "completed", 10)
    _status, observations, completed_at = _stored(server, run.id)
    assert observations == 0 and completed_at is not None  # completed before anybody looked
    (listed,) = client.beta.threads.runs.list(thread.id).data
    assert (listed.status, listed.completed_at) == ("completed", completed_at)
    assert listed.usage is not None and listed.usage.completion_tokens > 0
    (reply,) = client.beta.threads.messages.list(thread.id, run_id=run.id).data
    assert reply.content[0].text.value == "You said: hello"  # type: ignore[union-attr]


@contextmanager
def _database(tmp_path: Path) -> Iterator[str]:
    admin_url = os.environ.get("EMULATOR_TEST_DATABASE_URL")
    if admin_url:
        with postgres_database(admin_url) as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path / 'shared.sqlite3'}"


@pytest.fixture
def two_replicas(tmp_path: Path) -> Iterator[tuple[RunningServer, RunningServer]]:
    """Two fresh processes on one fresh database; the first's model takes 3 s to its first token."""
    with ExitStack() as stack:
        url = stack.enter_context(_database(tmp_path))
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        first = stack.enter_context(run_server(tmp_path / "a", url, EMULATOR_LATENCY_TTFT_MS=str(STREAM_WAIT_MS)))
        second = stack.enter_context(run_server(tmp_path / "b", url))
        yield first, second


def test_a_run_whose_streaming_process_is_killed_is_finished_by_another_replica(
    two_replicas: tuple[RunningServer, RunningServer],
) -> None:
    streaming, other = two_replicas
    headers = {"Authorization": f"Bearer sk-{uuid.uuid4().hex}", **BETA}
    with httpx.Client(base_url=streaming.base_url, headers=headers, timeout=30) as http:
        assistant = http.post("/assistants", json={"model": "gpt-4o"}).json()["id"]
        thread = http.post("/threads", json={"messages": [{"role": "user", "content": "hello"}]}).json()["id"]
        run_id = None
        with http.stream("POST", f"/threads/{thread}/runs", json={"assistant_id": assistant, "stream": True}) as sse:
            event = ""
            for line in sse.iter_lines():
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: {") and event == "thread.run.created":
                    run_id = json.loads(line.removeprefix("data: "))["id"]
                elif event == "thread.message.created":  # the model answers in 3 s: the stream waits for it
                    streaming.process.kill()
                    break
    assert run_id is not None
    killed = time.monotonic()
    streaming.process.wait(10)
    assert _stored(other, run_id)[0] == "in_progress"
    # The stream's lease (4 s, renewed while it lived) lapses; then the other replica's runner takes the run.
    _until_stored(other, run_id, "completed", 15)
    took = time.monotonic() - killed
    print(f"run finished by the other replica {took:.1f} s after the kill")
    assert took < STREAM_WAIT_MS / 1000 + 6, took
    assert _stored(other, run_id)[1] == 0  # no read moved it
    with httpx.Client(base_url=other.base_url, headers=headers, timeout=30) as http:
        reply = http.get(f"/threads/{thread}/messages", params={"limit": 1}).json()["data"][0]
    assert reply["run_id"] == run_id and reply["status"] == "completed"
    assert reply["content"][0]["text"]["value"] == "You said: hello"


@pytest.mark.parametrize("mover", ["the same server", "another replica"])
def test_a_clock_advance_past_a_waiting_runs_answer_lets_the_runner_finish_it_at_once(
    two_replicas: tuple[RunningServer, RunningServer], mover: str
) -> None:
    """A run nobody reads waits for its model's answer (a 60 s latency profile); its tenant's clock moves past the
    answer's time, on this server or another replica: the run is due at once (its `due_at` came as much sooner)
    and a runner finishes it within a few seconds, not a minute later. Another tenant's run with the same profile
    keeps waiting: its clock did not move."""
    first, second = two_replicas
    movers, watchers = [], []
    for _tenant in range(2):
        key = f"sk-{uuid.uuid4().hex}"
        control = httpx.Client(base_url=f"{first.root_url}/_emulator", headers={"Authorization": f"Bearer {key}"})
        control.post("/latency", json={"ttft_ms": 60_000}).raise_for_status()
        client = OpenAI(base_url=first.base_url, api_key=key, max_retries=0)
        assistant = client.beta.assistants.create(model="gpt-4o")
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "hello"}])
        run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
        _until_stored(first, run.id, "in_progress", 10)  # a runner started it: the answer is a minute away
        (movers if not movers else watchers).append((key, run.id))
    (key, run_id), (_other_key, other_run_id) = movers[0], watchers[0]
    time.sleep(1.5)  # a runner's sweep or two: nothing is due
    assert _stored(first, run_id)[0] == "in_progress"
    where = first if mover == "the same server" else second
    httpx.post(f"{where.root_url}/_emulator/clock/advance", json={"seconds": 120},
               headers={"Authorization": f"Bearer {key}"}).raise_for_status()
    took = _until_stored(first, run_id, "completed", 30)
    print(f"run completed {took:.2f} s after the clock advance ({mover})")
    assert took < 3.0, took
    assert _stored(first, run_id)[1] == 0  # no read moved it
    assert _stored(first, other_run_id)[0] == "in_progress"
