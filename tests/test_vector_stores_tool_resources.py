"""`tool_resources.file_search` of assistants and threads: vector store ids are checked, and the `vector_stores`
helper builds a store from file ids."""

from __future__ import annotations

import httpx
import pytest
from openai import BadRequestError, OpenAI

from tests.server import RunningServer
from tests.vector_stores_support import advance_clock, upload


def test_assistant_and_thread_accept_an_existing_store(client: OpenAI) -> None:
    store = client.vector_stores.create(name="kb")
    assistant = client.beta.assistants.create(
        model="gpt-4o",
        tools=[{"type": "file_search"}],
        tool_resources={"file_search": {"vector_store_ids": [store.id]}},
    )
    assert assistant.tool_resources is not None and assistant.tool_resources.file_search is not None
    assert assistant.tool_resources.file_search.vector_store_ids == [store.id]
    thread = client.beta.threads.create(tool_resources={"file_search": {"vector_store_ids": [store.id]}})
    assert thread.tool_resources.file_search.vector_store_ids == [store.id]  # type: ignore[union-attr]
    updated = client.beta.threads.update(thread.id, tool_resources={"file_search": {"vector_store_ids": []}})
    assert updated.tool_resources.file_search.vector_store_ids == []  # type: ignore[union-attr]


@pytest.mark.parametrize("path", ["/assistants", "/threads"])
def test_unknown_store_is_a_400(http: httpx.Client, path: str) -> None:
    body: dict = {"tool_resources": {"file_search": {"vector_store_ids": ["vs_doesnotexist"]}}}
    if path == "/assistants":
        body["model"] = "gpt-4o"
    response = http.post(path, json=body)
    assert response.status_code == 400
    assert response.json()["error"] == {
        "message": "Invalid 'tool_resources.file_search.vector_store_ids': no vector store found with id "
        "'vs_doesnotexist'.",
        "type": "invalid_request_error",
        "param": "tool_resources.file_search.vector_store_ids",
        "code": None,
    }


def test_another_tenants_store_is_unknown(client: OpenAI, server: RunningServer) -> None:
    theirs = OpenAI(base_url=server.base_url, api_key="sk-other-owner", max_retries=0).vector_stores.create()
    with pytest.raises(BadRequestError) as refused:
        client.beta.assistants.create(model="gpt-4o", tool_resources={"file_search": {"vector_store_ids": [theirs.id]}})
    assert "no vector store found" in refused.value.message


def test_expired_store_is_refused(client: OpenAI, control: httpx.Client) -> None:
    store = client.vector_stores.create(expires_after={"anchor": "last_active_at", "days": 1})
    advance_clock(control, 86_400)
    with pytest.raises(BadRequestError) as refused:
        client.beta.threads.create(tool_resources={"file_search": {"vector_store_ids": [store.id]}})
    assert "expired" in refused.value.message
    with pytest.raises(BadRequestError):
        client.beta.assistants.create(model="gpt-4o", tool_resources={"file_search": {"vector_store_ids": [store.id]}})


def test_thread_vector_stores_helper_builds_a_store(client: OpenAI) -> None:
    files = [upload(client, "a.txt", "The capybara is the largest rodent."), upload(client, "b.md", "# Otters\nplay")]
    thread = client.beta.threads.create(
        tool_resources={
            "file_search": {
                "vector_stores": [
                    {
                        "file_ids": files,
                        "chunking_strategy": {
                            "type": "static",
                            "static": {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 100},
                        },
                        "metadata": {"origin": "thread"},
                    }
                ]
            }
        }
    )
    [store_id] = thread.tool_resources.file_search.vector_store_ids  # type: ignore[union-attr,misc]
    store = client.vector_stores.retrieve(store_id)
    assert store.metadata == {"origin": "thread"} and store.file_counts.completed == 2 and store.status == "completed"
    attached = list(client.vector_stores.files.list(vector_store_id=store_id))
    assert sorted(f.id for f in attached) == sorted(files)
    assert {f.chunking_strategy.static.max_chunk_size_tokens for f in attached} == {200}  # type: ignore[union-attr]
    hits = client.vector_stores.search(store_id, query="capybara")
    assert [hit.filename for hit in hits.data] == ["a.txt"]


def test_assistant_vector_stores_helper_builds_a_store(client: OpenAI) -> None:
    file_id = upload(client, "notes.txt", "assistant knowledge")
    assistant = client.beta.assistants.create(
        model="gpt-4o", tool_resources={"file_search": {"vector_stores": [{"file_ids": [file_id]}]}}
    )
    [store_id] = assistant.tool_resources.file_search.vector_store_ids  # type: ignore[union-attr,misc]
    assert client.vector_stores.retrieve(store_id).file_counts.total == 1


@pytest.mark.parametrize(
    ("file_search", "param"),
    [
        ({"vector_store_ids": ["vs_a", "vs_b"]}, "tool_resources.file_search.vector_store_ids"),
        ({"vector_stores": [{"file_ids": []}, {"file_ids": []}]}, "tool_resources.file_search.vector_stores"),
        (
            {"vector_store_ids": ["vs_a"], "vector_stores": [{"file_ids": []}]},
            "tool_resources.file_search.vector_stores",
        ),
    ],
)
def test_at_most_one_store_per_thread(http: httpx.Client, file_search: dict, param: str) -> None:
    response = http.post("/threads", json={"tool_resources": {"file_search": file_search}})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
    assert "array too long" in response.json()["error"]["message"]


def test_helper_with_unknown_file_is_refused_and_creates_nothing(client: OpenAI, http: httpx.Client) -> None:
    response = http.post(
        "/threads", json={"tool_resources": {"file_search": {"vector_stores": [{"file_ids": ["file-nope"]}]}}}
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        "Invalid 'tool_resources.file_search.vector_stores[0].file_ids': no file found with id 'file-nope'."
    )
    assert list(client.vector_stores.list()) == []


def test_helper_static_chunking_is_validated(http: httpx.Client) -> None:
    strategy = {"type": "static", "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 60}}
    response = http.post(
        "/threads",
        json={"tool_resources": {"file_search": {"vector_stores": [{"file_ids": [], "chunking_strategy": strategy}]}}},
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == (
        "tool_resources.file_search.vector_stores[0].chunking_strategy.static.chunk_overlap_tokens"
    )
