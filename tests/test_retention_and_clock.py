"""The control plane: a clock per tenant, thread retention proved by advancing it (60 days after the last
activity, 404 everywhere and gone from storage), files that persist, reset of one tenant, health.

A tenant's clock only moves forward (its own advances, and the operator's for every tenant), so every test here
reads it instead of assuming wall time. Isolation of the tenants' clocks: `test_control_tenancy.py`.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from openai import BadRequestError, NotFoundError, OpenAI

from tests.oracle import conforms
from tests.server import RunningServer, run_server
from tests.storage import count, tenant_of

DAY = 86_400
RETENTION = 60 * DAY
SLACK = 30
"""Wall seconds a test may take between two reads of the clock (generous: the machine may be loaded)."""


def now(control: httpx.Client) -> int:
    body = control.get("/clock").json()
    assert set(body) == {"now"} and isinstance(body["now"], int)
    return body["now"]


def advance(control: httpx.Client, seconds: int) -> int:
    response = control.post("/clock/advance", json={"seconds": seconds})
    assert response.status_code == 200, response.text
    return response.json()["now"]


def thread_is_gone(http: httpx.Client, thread_id: str, message_id: str) -> None:
    expected = {
        "error": {
            "message": f"No thread found with id '{thread_id}'.",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }
    requests = [
        ("GET", f"/threads/{thread_id}", None),
        ("POST", f"/threads/{thread_id}", {"metadata": {"a": "b"}}),
        ("DELETE", f"/threads/{thread_id}", None),
        ("GET", f"/threads/{thread_id}/messages", None),
        ("POST", f"/threads/{thread_id}/messages", {"role": "user", "content": "late"}),
        ("GET", f"/threads/{thread_id}/messages/{message_id}", None),
        ("POST", f"/threads/{thread_id}/messages/{message_id}", {"metadata": {}}),
        ("DELETE", f"/threads/{thread_id}/messages/{message_id}", None),
    ]
    for method, path, body in requests:
        response = http.request(method, path, json=body)
        assert (response.status_code, response.json()) == (404, expected), (method, path)


def test_clock_reads_and_advances(control: httpx.Client, client: OpenAI) -> None:
    start = now(control)
    moved = advance(control, 3 * DAY)
    assert start + 3 * DAY <= moved <= start + 3 * DAY + SLACK
    assert moved <= now(control) <= moved + SLACK, "the advance persists"

    thread = client.beta.threads.create()
    assert moved <= thread.created_at <= now(control), "new objects are stamped with the emulator clock"

    for bad, message in (
        ({"seconds": -1}, "Invalid 'seconds': integer below minimum value. Expected a value >= 1, but got -1 instead."),
        ({"seconds": 0}, "Invalid 'seconds': integer below minimum value. Expected a value >= 1, but got 0 instead."),
        ({"seconds": "soon"}, "Invalid type for 'seconds': expected an integer, but got a string instead."),
        ({}, "Missing required parameter: 'seconds'."),
    ):
        response = control.post("/clock/advance", json=bad)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["message"] == message
    assert now(control) - moved < SLACK, "refused advances move nothing"


def test_clock_needs_a_key_and_no_beta_header(server: RunningServer, api_key: str) -> None:
    response = httpx.get(f"{server.root_url}/_emulator/clock", headers={"Authorization": f"Bearer {api_key}"})
    assert response.status_code == 200 and isinstance(response.json()["now"], int)
    anonymous = httpx.get(f"{server.root_url}/_emulator/clock")
    assert anonymous.status_code == 401 and anonymous.json()["error"]["type"] == "invalid_request_error"


def test_an_idle_thread_disappears_after_60_days(
    client: OpenAI, http: httpx.Client, control: httpx.Client, server: RunningServer, api_key: str
) -> None:
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "first"}])
    message = client.beta.threads.messages.create(thread.id, role="user", content="second")
    assert count(server, "messages", thread_id=thread.id) == 2

    advance(control, RETENTION - 60)
    assert client.beta.threads.retrieve(thread.id).id == thread.id, (
        "alive a minute before 60 days (reading is no activity)"
    )
    advance(control, 61)  # now 60 days and 1 second (or a little more) after the last activity
    thread_is_gone(http, thread.id, message.id)
    with pytest.raises(NotFoundError):
        client.beta.threads.messages.list(thread.id)

    assert count(server, "threads", id=thread.id) == 0, "the thread is deleted from storage"
    assert count(server, "messages", thread_id=thread.id) == 0, "and so are its messages"
    assert count(server, "messages", id=message.id) == 0
    assert count(server, "threads", tenant=tenant_of(api_key)) == 0


def test_activity_restarts_the_60_days(
    client: OpenAI, http: httpx.Client, control: httpx.Client, server: RunningServer
) -> None:
    messaged, updated, idle = (client.beta.threads.create() for _ in range(3))
    idle_message = client.beta.threads.messages.create(idle.id, role="user", content="hello")

    advance(control, 59 * DAY)
    client.beta.threads.messages.create(messaged.id, role="user", content="still here")
    client.beta.threads.update(updated.id, metadata={"touched": "yes"})

    advance(control, DAY + 60)  # 60 days and a minute after creation, one day after the activity
    thread_is_gone(http, idle.id, idle_message.id)
    assert count(server, "threads", id=idle.id) == 0
    assert client.beta.threads.retrieve(messaged.id).id == messaged.id
    assert len(client.beta.threads.messages.list(messaged.id).data) == 1
    assert client.beta.threads.retrieve(updated.id).metadata == {"touched": "yes"}

    advance(control, 59 * DAY - 120)  # 60 days minus a minute after the activity: both still alive
    assert client.beta.threads.retrieve(messaged.id).id == messaged.id
    advance(control, 121)
    for thread in (messaged, updated):
        with pytest.raises(NotFoundError):
            client.beta.threads.retrieve(thread.id)
        assert count(server, "threads", id=thread.id) == 0


def test_files_and_assistants_persist_past_60_days(
    client: OpenAI, http: httpx.Client, control: httpx.Client, data_dir: Path
) -> None:
    uploaded = client.files.create(file=("keep.txt", b"kept forever"), purpose="assistants")
    assistant = client.beta.assistants.create(model="gpt-4o", name="Keeper")
    advance(control, 2 * RETENTION)
    conforms(http.get(f"/files/{uploaded.id}").json(), type(uploaded), "OpenAIFile")
    assert client.files.retrieve(uploaded.id) == uploaded
    assert client.files.content(uploaded.id).read() == b"kept forever"
    assert (data_dir / "files" / uploaded.id).exists()
    assert client.beta.assistants.retrieve(assistant.id).name == "Keeper"
    # Files are still usable by new threads after the advance.
    thread = client.beta.threads.create(tool_resources={"code_interpreter": {"file_ids": [uploaded.id]}})
    assert thread.tool_resources is not None and thread.tool_resources.code_interpreter is not None
    assert thread.tool_resources.code_interpreter.file_ids == [uploaded.id]


def test_reset_deletes_only_the_callers_objects(
    client: OpenAI, control: httpx.Client, server: RunningServer, api_key: str, data_dir: Path
) -> None:
    other_key = api_key + "-other"
    other = OpenAI(base_url=server.base_url, api_key=other_key, max_retries=0)

    def populate(sdk: OpenAI) -> dict[str, str]:
        thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "x"}])
        return {
            "assistant": sdk.beta.assistants.create(model="gpt-4o").id,
            "thread": thread.id,
            "message": sdk.beta.threads.messages.list(thread.id).data[0].id,
            "file": sdk.files.create(file=("f.txt", b"f"), purpose="assistants").id,
        }

    mine, theirs = populate(client), populate(other)
    response = control.post("/reset")
    assert response.status_code == 200 and response.json() == {"reset": True}

    assert list(client.beta.assistants.list()) == [] and list(client.files.list()) == []
    for call in (
        lambda: client.beta.assistants.retrieve(mine["assistant"]),
        lambda: client.beta.threads.retrieve(mine["thread"]),
        lambda: client.files.retrieve(mine["file"]),
    ):
        with pytest.raises(NotFoundError):
            call()
    tenant = tenant_of(api_key)
    for table in ("assistants", "threads", "messages", "files"):
        assert count(server, table, tenant=tenant) == 0, table
    assert not (data_dir / "files" / mine["file"]).exists()

    assert other.beta.assistants.retrieve(theirs["assistant"]).id == theirs["assistant"]
    assert [m.id for m in other.beta.threads.messages.list(theirs["thread"])] == [theirs["message"]]
    assert other.files.content(theirs["file"]).read() == b"f"
    assert (data_dir / "files" / theirs["file"]).exists()
    for table in ("assistants", "threads", "messages", "files"):
        assert count(server, table, tenant=tenant_of(other_key)) == 1, table

    # The tenant starts over with a working account.
    assert client.beta.threads.create().object == "thread"


def test_health_is_read_only(server: RunningServer, control: httpx.Client, client: OpenAI, api_key: str) -> None:
    client.beta.threads.create()
    before_now = now(control)
    tenant = tenant_of(api_key)
    tables = ("assistants", "threads", "messages", "files")
    before_counts = [count(server, table, tenant=tenant) for table in tables]
    for _ in range(3):
        response = httpx.get(f"{server.root_url}/_emulator/health")
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "ok" and body["database"] in ("sqlite", "postgresql")
        assert isinstance(body["version"], str) and isinstance(body["now"], int)
    assert now(control) - before_now < SLACK, "reading health does not move the clock"
    assert [count(server, table, tenant=tenant) for table in tables] == before_counts
    for method in ("POST", "PUT", "DELETE"):
        refused = httpx.request(method, f"{server.root_url}/_emulator/health")
        assert refused.status_code in (400, 405) and set(refused.json()) == {"error"}


def test_one_clock_and_one_state_for_every_replica(
    server: RunningServer, control: httpx.Client, client: OpenAI, api_key: str, tmp_path: Path
) -> None:
    """A second server process over the same database sees the same clock (the tenant's) and the same objects."""
    with run_server(tmp_path, server.database_url) as replica:
        replica_control = httpx.Client(
            base_url=f"{replica.root_url}/_emulator", headers={"Authorization": f"Bearer {api_key}"}, timeout=30
        )
        replica_client = OpenAI(base_url=replica.base_url, api_key=api_key, max_retries=0)
        with replica_control:
            moved = advance(replica_control, 7 * DAY)
            assert moved <= now(control) <= moved + SLACK, "an advance on one replica moves the other"
            moved = advance(control, DAY)
            assert moved <= now(replica_control) <= moved + SLACK

            thread = client.beta.threads.create(metadata={"made": "on the first"})
            replica_client.beta.threads.messages.create(thread.id, role="user", content="from the replica")
            assert replica_client.beta.threads.retrieve(thread.id).metadata == {"made": "on the first"}
            assert [m.content[0].text.value for m in client.beta.threads.messages.list(thread.id)] == [  # type: ignore[union-attr]
                "from the replica"
            ]
            advance(replica_control, RETENTION + 1)
            with pytest.raises(NotFoundError):
                client.beta.threads.retrieve(thread.id)


def test_a_file_with_expires_after_is_gone_once_it_expires(client: OpenAI, control: httpx.Client) -> None:
    lasting = client.files.create(file=("keep.txt", b"keep"), purpose="assistants")
    brief = client.files.create(
        file=("brief.txt", b"brief"), purpose="assistants", expires_after={"anchor": "created_at", "seconds": 3600}
    )
    assert {f.id for f in client.files.list()} == {lasting.id, brief.id}
    advance(control, 3601)
    for call in (client.files.retrieve, client.files.content, client.files.delete):
        with pytest.raises(NotFoundError) as gone:
            call(brief.id)
        assert gone.value.body["message"] == f"No such File object: {brief.id}"  # type: ignore[index]
    assert [f.id for f in client.files.list()] == [lasting.id], "an expired file is not listed either"
    with pytest.raises(BadRequestError):
        client.beta.threads.create(tool_resources={"code_interpreter": {"file_ids": [brief.id]}})
