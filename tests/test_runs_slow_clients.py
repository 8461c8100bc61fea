"""A client that reads its stream slowly (its server's writes wait for it, longer than a stream's lease) still gets
every event of its run, once each and in order: the stream holds its run's lease for as long as it lives, so no
runner (or reader) moves the run under it meanwhile (`runs.streaming`, `runs.waiting`).

The run's objects are made large (a function tool's 2 MB parameter schema, shown in every run event; the model's
context is a million tokens) and the client's receive buffer small, so that the server's socket buffers fill and
its writes wait while the client pauses.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import uuid
from typing import Any

import httpx

from emulator import limits
from tests.conftest import BETA
from tests.server import RunningServer
from tests.storage import query

PAUSE_SECONDS = limits.RUN_STREAM_LEASE_SECONDS + 2.5
"""Longer than a stream's lease, and than a runner's sweep after it."""
SCHEMA_WORDS = 200_000
"""2.2 MB of parameter schema: each of a run's events is larger than it (the stream, three times as large as the
socket buffers of both sides can hold)."""


def _sse(body: bytes) -> list[tuple[str, Any]]:
    events = []
    for block in body.decode().split("\n\n"):
        lines = block.split("\n")
        if lines[0].startswith("event: "):
            data = "\n".join(line.removeprefix("data: ") for line in lines[1:])
            events.append((lines[0].removeprefix("event: "), data if data == "[DONE]" else json.loads(data)))
    return events


def test_a_client_reading_slowly_gets_every_event_once_and_in_order(server: RunningServer) -> None:
    headers = {"Authorization": f"Bearer sk-{uuid.uuid4().hex}", **BETA}
    schema = {"type": "object", "description": "many words " * SCHEMA_WORDS, "properties": {}}
    small_buffer = httpx.HTTPTransport(socket_options=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)])
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=60, transport=small_buffer) as http:
        tool = {"type": "function", "function": {"name": "lookup", "parameters": schema}}
        assistant = http.post("/assistants", json={"model": "gpt-4.1", "tools": [tool]}).json()["id"]
        thread = http.post("/threads", json={"messages": [{"role": "user", "content": "hello"}]}).json()["id"]
        reads: list[str] = []
        with http.stream("POST", f"/threads/{thread}/runs", json={"assistant_id": assistant, "stream": True}) as sse:
            chunks = sse.iter_raw(65536)
            body = next(chunks)
            found = re.search(rb'"id":"(run_\w+)"', body)  # the first event's start: the run's id
            assert found is not None, body[:200]
            run_id = found.group(1).decode()
            reader = threading.Thread(target=lambda: reads.append(
                httpx.get(f"{server.base_url}/threads/{thread}/runs/{run_id}", headers=headers).json()["status"]))
            time.sleep(PAUSE_SECONDS / 2)
            reader.start()  # another client reads the run meanwhile: it leaves the run to the stream
            time.sleep(PAUSE_SECONDS / 2)
            reader.join(30)
            body += b"".join(chunks)
    events = _sse(body)
    names = [name for name, _data in events]
    assert names == [
        "thread.run.created", "thread.run.queued", "thread.run.in_progress",
        "thread.run.step.created", "thread.run.step.in_progress", "thread.message.created",
        "thread.message.in_progress", *["thread.message.delta"] * (len(names) - 11), "thread.message.completed",
        "thread.run.step.completed", "thread.run.completed", "done",
    ], names
    deltas = [data["delta"]["content"][0]["text"]["value"] for name, data in events if name == "thread.message.delta"]
    assert "".join(deltas) == "You said: hello"
    assert reads == ["in_progress"]
    ((status, observations),) = query(server, "SELECT status, observations FROM runs WHERE id = :id", id=run_id)
    assert (status, observations) == ("completed", 0), "the read left the run to the stream, which finished it"
