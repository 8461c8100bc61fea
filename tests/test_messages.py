"""Messages through the official SDK and raw HTTP: content parts, attachments, retrieve/update/delete, and
pagination over hundreds of messages (SDK auto-pagination and every cursor parameter by hand)."""

from __future__ import annotations

import httpx
import pytest
from openai import BadRequestError, NotFoundError, OpenAI
from openai.types.beta.threads import Message, MessageDeleted

from tests.oracle import check_fields, conforms


def clock_now(control: httpx.Client) -> int:
    return control.get("/clock").json()["now"]


def add_messages(http: httpx.Client, thread_id: str, count: int) -> list[str]:
    ids = []
    for index in range(count):
        response = http.post(f"/threads/{thread_id}/messages", json={"role": "user", "content": f"m{index}"})
        assert response.status_code == 200, response.text
        ids.append(response.json()["id"])
    return ids


def ids_of(page: dict) -> list[str]:  # type: ignore[type-arg]
    return [item["id"] for item in page["data"]]


def test_create_with_a_string(client: OpenAI, http: httpx.Client, control: httpx.Client) -> None:
    thread = client.beta.threads.create()
    before = clock_now(control)
    message = client.beta.threads.messages.create(
        thread.id, role="user", content="Hello there", metadata={"source": "test"}
    )
    after = clock_now(control)
    assert message.id.startswith("msg_") and len(message.id) == len("msg_") + 24
    assert before <= message.created_at <= after

    raw = http.get(f"/threads/{thread.id}/messages/{message.id}").json()
    parsed = conforms(raw, Message, "MessageObject")
    assert parsed == message
    assert raw["object"] == "thread.message" and raw["thread_id"] == thread.id and raw["role"] == "user"
    assert raw["content"] == [{"type": "text", "text": {"value": "Hello there", "annotations": []}}]
    assert raw["metadata"] == {"source": "test"} and raw["attachments"] == []
    assert (raw["assistant_id"], raw["run_id"], raw["incomplete_details"]) == (None, None, None)
    assert raw["status"] == "completed"


def test_content_parts_text_image_file_and_image_url(client: OpenAI, http: httpx.Client) -> None:
    image = client.files.create(file=("cat.png", b"\x89PNG not really"), purpose="vision")
    thread = client.beta.threads.create()
    message = client.beta.threads.messages.create(
        thread.id,
        role="user",
        content=[
            {"type": "text", "text": "What is in these pictures?"},
            {"type": "image_file", "image_file": {"file_id": image.id}},
            {"type": "image_url", "image_url": {"url": "https://example.com/dog.jpg", "detail": "high"}},
        ],
    )
    assert [part.type for part in message.content] == ["text", "image_file", "image_url"]
    raw = http.get(f"/threads/{thread.id}/messages/{message.id}").json()
    conforms(raw, Message, "MessageObject")
    assert raw["content"] == [
        {"type": "text", "text": {"value": "What is in these pictures?", "annotations": []}},
        {"type": "image_file", "image_file": {"file_id": image.id, "detail": "auto"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/dog.jpg", "detail": "high"}},
    ]


def test_attachments_reference_uploaded_files(client: OpenAI, http: httpx.Client) -> None:
    doc = client.files.create(file=("notes.md", b"# notes"), purpose="assistants")
    thread = client.beta.threads.create()
    message = client.beta.threads.messages.create(
        thread.id,
        role="user",
        content="Read this",
        attachments=[{"file_id": doc.id, "tools": [{"type": "file_search"}, {"type": "code_interpreter"}]}],
    )
    raw = http.get(f"/threads/{thread.id}/messages/{message.id}").json()
    conforms(raw, Message, "MessageObject")
    assert raw["attachments"] == [{"file_id": doc.id, "tools": [{"type": "file_search"}, {"type": "code_interpreter"}]}]

    with pytest.raises(BadRequestError) as unknown:
        client.beta.threads.messages.create(
            thread.id, role="user", content="x", attachments=[{"file_id": "file-missing", "tools": []}]
        )
    assert unknown.value.body == {  # type: ignore[comparison-overlap]
        "message": "Invalid 'attachments': no file found with id 'file-missing'.",
        "type": "invalid_request_error",
        "param": "attachments",
        "code": None,
    }
    client.files.delete(doc.id)
    with pytest.raises(BadRequestError) as deleted:
        client.beta.threads.messages.create(
            thread.id, role="user", content=[{"type": "image_file", "image_file": {"file_id": doc.id}}]
        )
    assert deleted.value.body == {  # type: ignore[comparison-overlap]
        "message": f"Invalid 'content': no file found with id '{doc.id}'.",
        "type": "invalid_request_error",
        "param": "content",
        "code": None,
    }
    assert ids_of(http.get(f"/threads/{thread.id}/messages").json()) == [message.id], "refusals add nothing"


def test_update_metadata_and_delete(client: OpenAI, http: httpx.Client) -> None:
    thread = client.beta.threads.create()
    keep, drop = (
        client.beta.threads.messages.create(thread.id, role="user", content=text, metadata={"v": "1"})
        for text in ("keep", "drop")
    )
    updated = client.beta.threads.messages.update(keep.id, thread_id=thread.id, metadata={"v": "2", "w": "3"})
    assert updated.metadata == {"v": "2", "w": "3"}
    assert updated.content == keep.content and updated.created_at == keep.created_at

    raw = http.delete(f"/threads/{thread.id}/messages/{drop.id}").json()
    assert conforms(raw, MessageDeleted, "DeleteMessageResponse") == MessageDeleted(
        id=drop.id, object="thread.message.deleted", deleted=True
    )
    modified = http.post(f"/threads/{thread.id}/messages/{keep.id}", json={"metadata": {"v": "2", "w": "3"}})
    assert conforms(modified.json(), Message, "MessageObject") == updated
    listed = http.get(f"/threads/{thread.id}/messages").json()
    check_fields(listed, "ListMessagesResponse")
    assert conforms(listed["data"][0], Message, "MessageObject") == updated
    assert ids_of(listed) == [keep.id]
    assert listed["data"][0]["metadata"] == {"v": "2", "w": "3"}
    expected = {
        "message": f"No message found with id '{drop.id}'.",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    for call in (
        lambda: client.beta.threads.messages.retrieve(drop.id, thread_id=thread.id),
        lambda: client.beta.threads.messages.update(drop.id, thread_id=thread.id, metadata={}),
        lambda: client.beta.threads.messages.delete(drop.id, thread_id=thread.id),
    ):
        with pytest.raises(NotFoundError) as missing:
            call()
        assert missing.value.body == expected  # type: ignore[comparison-overlap]


def test_a_message_is_only_found_in_its_own_thread(client: OpenAI) -> None:
    first, second = client.beta.threads.create(), client.beta.threads.create()
    message = client.beta.threads.messages.create(first.id, role="user", content="mine")
    with pytest.raises(NotFoundError) as elsewhere:
        client.beta.threads.messages.retrieve(message.id, thread_id=second.id)
    assert elsewhere.value.body["message"] == f"No message found with id '{message.id}'."  # type: ignore[index]
    with pytest.raises(NotFoundError):
        client.beta.threads.messages.delete(message.id, thread_id=second.id)
    assert client.beta.threads.messages.retrieve(message.id, thread_id=first.id).id == message.id


def test_sdk_auto_pagination_over_hundreds_of_messages(client: OpenAI, http: httpx.Client) -> None:
    thread = client.beta.threads.create()
    ids = add_messages(http, thread.id, 260)

    oldest_first = [m.id for m in client.beta.threads.messages.list(thread.id, limit=100, order="asc")]
    assert oldest_first == ids
    newest_first = [m.id for m in client.beta.threads.messages.list(thread.id, limit=33)]
    assert newest_first == ids[::-1], "the default order is desc"
    default_page = client.beta.threads.messages.list(thread.id)
    assert [m.id for m in default_page.data] == ids[::-1][:20], "the default limit is 20"
    assert default_page.has_more is True
    pages = list(client.beta.threads.messages.list(thread.id, limit=100, order="asc").iter_pages())
    assert [len(page.data) for page in pages] == [100, 100, 60]
    assert [page.has_more for page in pages] == [True, True, False]


def test_cursor_parameters_by_hand(client: OpenAI, http: httpx.Client) -> None:
    thread = client.beta.threads.create()
    ids = add_messages(http, thread.id, 12)
    url = f"/threads/{thread.id}/messages"

    page = http.get(url, params={"limit": 5, "order": "asc"}).json()
    check_fields(page, "ListMessagesResponse")
    for item in page["data"]:
        conforms(item, Message, "MessageObject")
    assert ids_of(page) == ids[:5]
    assert (page["object"], page["first_id"], page["last_id"], page["has_more"]) == ("list", ids[0], ids[4], True)

    after = http.get(url, params={"limit": 5, "order": "asc", "after": ids[4]}).json()
    assert ids_of(after) == ids[5:10] and after["has_more"] is True
    tail = http.get(url, params={"limit": 5, "order": "asc", "after": ids[9]}).json()
    assert ids_of(tail) == ids[10:] and tail["has_more"] is False
    assert (tail["first_id"], tail["last_id"]) == (ids[10], ids[11])

    before = http.get(url, params={"limit": 3, "order": "asc", "before": ids[9]}).json()
    assert ids_of(before) == ids[6:9], "before gives the page just before the cursor, in the list's order"
    assert before["has_more"] is True
    desc_before = http.get(url, params={"limit": 3, "before": ids[2]}).json()
    assert ids_of(desc_before) == [ids[5], ids[4], ids[3]]
    desc_after = http.get(url, params={"limit": 3, "after": ids[2]}).json()
    assert ids_of(desc_after) == [ids[1], ids[0]] and desc_after["has_more"] is False
    window = http.get(url, params={"order": "asc", "after": ids[2], "before": ids[6]}).json()
    assert ids_of(window) == ids[3:6]

    empty = http.get(url, params={"order": "asc", "after": ids[11]}).json()
    assert empty == {"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}


def test_run_id_filter(client: OpenAI, http: httpx.Client) -> None:
    thread = client.beta.threads.create()
    ids = add_messages(http, thread.id, 3)
    filtered = http.get(f"/threads/{thread.id}/messages", params={"run_id": "run_unknown"}).json()
    check_fields(filtered, "ListMessagesResponse")
    assert filtered == {"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}
    assert list(client.beta.threads.messages.list(thread.id, run_id="run_unknown")) == []
    assert [m.id for m in client.beta.threads.messages.list(thread.id, order="asc")] == ids
