"""Threads through the official SDK and raw HTTP: create (with messages, tool resources, metadata), retrieve,
update, delete, every body checked against the SDK types and the official schema."""

from __future__ import annotations

import httpx
import pytest
from openai import BadRequestError, NotFoundError, OpenAI
from openai.types import FileObject
from openai.types.beta import Thread, ThreadDeleted
from openai.types.beta.threads import Message

from tests.oracle import check_fields, conforms
from tests.server import RunningServer
from tests.storage import count, tenant_of


def clock_now(control: httpx.Client) -> int:
    return control.get("/clock").json()["now"]


def upload(
    client: OpenAI, name: str = "data.csv", content: bytes = b"a,b\n1,2\n", purpose: str = "assistants"
) -> FileObject:
    return client.files.create(file=(name, content), purpose=purpose)  # type: ignore[arg-type]


def test_create_empty_thread(client: OpenAI, http: httpx.Client, control: httpx.Client) -> None:
    before = clock_now(control)
    thread = client.beta.threads.create()
    after = clock_now(control)
    assert thread.id.startswith("thread_") and len(thread.id) == len("thread_") + 24
    assert thread.object == "thread"
    assert before <= thread.created_at <= after, "created_at is the emulator clock, in Unix seconds"
    assert thread.metadata == {}

    raw = http.get(f"/threads/{thread.id}").json()
    parsed = conforms(raw, Thread, "ThreadObject")
    assert raw == {
        "id": thread.id,
        "object": "thread",
        "created_at": thread.created_at,
        "tool_resources": {},
        "metadata": {},
    }
    assert parsed == thread


def test_create_with_messages_tool_resources_and_metadata(client: OpenAI, http: httpx.Client) -> None:
    sheet = upload(client)
    image = upload(client, "cat.png", b"\x89PNG fake", purpose="vision")
    thread = client.beta.threads.create(
        messages=[
            {
                "role": "user",
                "content": "Plot this.",
                "attachments": [{"file_id": sheet.id, "tools": [{"type": "code_interpreter"}]}],
            },
            {"role": "assistant", "content": [{"type": "text", "text": "Which columns?"}], "metadata": {"turn": "2"}},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Both, and look at"},
                    {"type": "image_file", "image_file": {"file_id": image.id, "detail": "low"}},
                ],
            },
        ],
        tool_resources={"code_interpreter": {"file_ids": [sheet.id]}},
        metadata={"project": "charts", "owner": "qa"},
    )
    assert thread.metadata == {"project": "charts", "owner": "qa"}
    raw = http.get(f"/threads/{thread.id}").json()
    conforms(raw, Thread, "ThreadObject")
    assert raw["tool_resources"] == {"code_interpreter": {"file_ids": [sheet.id]}}

    page = http.get(f"/threads/{thread.id}/messages", params={"order": "asc"}).json()
    check_fields(page, "ListMessagesResponse")
    messages = [conforms(item, Message, "MessageObject") for item in page["data"]]
    assert [m.role for m in messages] == ["user", "assistant", "user"]
    assert all(m.thread_id == thread.id and m.run_id is None and m.assistant_id is None for m in messages)
    first, second, third = page["data"]
    assert first["content"] == [{"type": "text", "text": {"value": "Plot this.", "annotations": []}}]
    assert first["attachments"] == [{"file_id": sheet.id, "tools": [{"type": "code_interpreter"}]}]
    assert second["content"] == [{"type": "text", "text": {"value": "Which columns?", "annotations": []}}]
    assert second["metadata"] == {"turn": "2"} and second["attachments"] == []
    assert third["content"] == [
        {"type": "text", "text": {"value": "Both, and look at", "annotations": []}},
        {"type": "image_file", "image_file": {"file_id": image.id, "detail": "low"}},
    ]
    assert len({m.id for m in messages}) == 3 and all(m.id.startswith("msg_") for m in messages)
    assert all(m.created_at == thread.created_at for m in messages)


def test_create_thread_refuses_a_bad_message_and_creates_nothing(
    client: OpenAI, server: RunningServer, api_key: str
) -> None:
    with pytest.raises(BadRequestError) as refused:
        client.beta.threads.create(
            messages=[
                {"role": "user", "content": "fine"},
                {"role": "user", "content": "x", "attachments": [{"file_id": "file-nope", "tools": []}]},
            ]
        )
    assert refused.value.body == {  # type: ignore[comparison-overlap]
        "message": "Invalid 'messages[1].attachments': no file found with id 'file-nope'.",
        "type": "invalid_request_error",
        "param": "messages[1].attachments",
        "code": None,
    }
    tenant = tenant_of(api_key)
    assert count(server, "threads", tenant=tenant) == 0, "the refused request left no thread behind"
    assert count(server, "messages", tenant=tenant) == 0, "nor its first, valid message"
    with pytest.raises(BadRequestError) as bad_role:
        client.beta.threads.create(messages=[{"role": "system", "content": "x"}])  # type: ignore[typeddict-item]
    assert bad_role.value.body["param"] == "messages[0].role"  # type: ignore[index]


def test_update_replaces_metadata_and_tool_resources(client: OpenAI, http: httpx.Client) -> None:
    first, second = upload(client), upload(client, "b.csv")
    thread = client.beta.threads.create(
        metadata={"a": "1"}, tool_resources={"code_interpreter": {"file_ids": [first.id]}}
    )
    updated = client.beta.threads.update(thread.id, metadata={"b": "2"})
    assert updated.metadata == {"b": "2"}, "metadata is replaced, not merged"
    assert updated.tool_resources is not None and updated.tool_resources.code_interpreter is not None
    assert updated.tool_resources.code_interpreter.file_ids == [first.id], "fields not named are kept"

    response = http.post(
        f"/threads/{thread.id}", json={"tool_resources": {"code_interpreter": {"file_ids": [second.id]}}}
    )
    assert response.status_code == 200, response.text
    conforms(response.json(), Thread, "ThreadObject")
    raw = http.get(f"/threads/{thread.id}").json()
    assert conforms(raw, Thread, "ThreadObject") == conforms(response.json(), Thread, "ThreadObject")
    assert raw["tool_resources"] == {"code_interpreter": {"file_ids": [second.id]}}
    assert raw["metadata"] == {"b": "2"} and raw["created_at"] == thread.created_at

    with pytest.raises(BadRequestError) as refused:
        client.beta.threads.update(thread.id, tool_resources={"code_interpreter": {"file_ids": ["file-gone"]}})
    assert refused.value.body["message"] == (  # type: ignore[index]
        "Invalid 'tool_resources.code_interpreter.file_ids': no file found with id 'file-gone'."
    )
    assert http.get(f"/threads/{thread.id}").json() == raw, "a refused update changes nothing"


def test_thread_file_search_takes_at_most_one_vector_store(http: httpx.Client) -> None:
    response = http.post("/threads", json={"tool_resources": {"file_search": {"vector_store_ids": ["vs_a", "vs_b"]}}})
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "message": "Invalid 'tool_resources.file_search.vector_store_ids': array too long. Expected an array "
            "with maximum length 1, but got an array with length 2 instead.",
            "type": "invalid_request_error",
            "param": "tool_resources.file_search.vector_store_ids",
            "code": "array_above_max_length",
        }
    }


def test_delete_thread_and_its_messages(client: OpenAI, http: httpx.Client) -> None:
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    message_id = client.beta.threads.messages.list(thread.id).data[0].id

    raw = http.delete(f"/threads/{thread.id}").json()
    check_fields(raw, "DeleteThreadResponse")
    assert conforms(raw, ThreadDeleted, "DeleteThreadResponse") == ThreadDeleted(
        id=thread.id, object="thread.deleted", deleted=True
    )
    expected = {
        "message": f"No thread found with id '{thread.id}'.",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    for call in (
        lambda: client.beta.threads.retrieve(thread.id),
        lambda: client.beta.threads.update(thread.id, metadata={}),
        lambda: client.beta.threads.delete(thread.id),
        lambda: client.beta.threads.messages.list(thread.id),
        lambda: client.beta.threads.messages.retrieve(message_id, thread_id=thread.id),
        lambda: client.beta.threads.messages.create(thread.id, role="user", content="again"),
    ):
        with pytest.raises(NotFoundError) as missing:
            call()
        assert missing.value.body == expected  # type: ignore[comparison-overlap]


def test_empty_and_null_bodies_create_an_empty_thread(http: httpx.Client) -> None:
    for content in (b"", b"{}", b"null"):
        response = http.post("/threads", content=content, headers={"Content-Type": "application/json"})
        assert response.status_code == 200, response.text
        body = conforms(response.json(), Thread, "ThreadObject")
        assert body.metadata == {} and response.json()["tool_resources"] == {}
