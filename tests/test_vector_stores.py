"""Vector stores through the SDK and raw HTTP: CRUD, lists, counts, usage, expiry by the clock, limits, tenants."""

from __future__ import annotations

import httpx
import pytest
from openai import BadRequestError, NotFoundError, OpenAI
from openai.types import VectorStore, VectorStoreDeleted

from tests.oracle import check_fields, conforms
from tests.server import RunningServer
from tests.vector_stores_support import advance_clock, emulator_now, upload

DAY = 86_400


def test_create_retrieve_update_delete_round_trip(client: OpenAI, http: httpx.Client, control: httpx.Client) -> None:
    before = emulator_now(control)
    created = client.vector_stores.create(name="Handbook", metadata={"team": "qa"})
    assert created.id.startswith("vs_") and len(created.id) == len("vs_") + 24
    assert (created.name, created.status, created.usage_bytes, created.metadata) == (
        "Handbook",
        "completed",
        0,
        {"team": "qa"},
    )
    assert created.file_counts.model_dump() == {
        "in_progress": 0,
        "completed": 0,
        "failed": 0,
        "cancelled": 0,
        "total": 0,
    }
    assert created.expires_after is None and created.expires_at is None
    assert before <= created.created_at == created.last_active_at <= before + 5

    raw = http.get(f"/vector_stores/{created.id}").json()
    conforms(raw, VectorStore, "VectorStoreObject")
    assert raw["object"] == "vector_store"

    updated = client.vector_stores.update(created.id, name="Renamed", metadata={"team": "dev"})
    assert (updated.name, updated.metadata) == ("Renamed", {"team": "dev"})

    deleted = client.vector_stores.delete(created.id)
    assert deleted == VectorStoreDeleted(id=created.id, object="vector_store.deleted", deleted=True)
    check_fields(http.get(f"/vector_stores/{created.id}").json()["error"], "Error")
    with pytest.raises(NotFoundError) as missing:
        client.vector_stores.retrieve(created.id)
    assert missing.value.body["message"] == f"No vector store found with id '{created.id}'."  # type: ignore[index]


def test_create_with_files_counts_and_usage(client: OpenAI, http: httpx.Client) -> None:
    good = upload(client, "notes.txt", "Kiwis are flightless birds from New Zealand.")
    also = upload(client, "more.md", "# Heading\nThe kakapo is a nocturnal parrot.")
    bad = upload(client, "photo.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    created = http.post("/vector_stores", json={"name": "birds", "file_ids": [good, also, bad]}).json()
    conforms(created, VectorStore, "VectorStoreObject")
    assert created["status"] == "in_progress", "files are processed when the store is next observed"
    assert created["file_counts"] == {"in_progress": 3, "completed": 0, "failed": 0, "cancelled": 0, "total": 3}

    ready = client.vector_stores.retrieve(created["id"])
    assert ready.status == "completed"
    assert ready.file_counts.model_dump() == {"in_progress": 0, "completed": 2, "failed": 1, "cancelled": 0, "total": 3}
    sizes = [f.usage_bytes for f in client.vector_stores.files.list(vector_store_id=ready.id)]
    assert (
        ready.usage_bytes
        == sum(sizes)
        == len(b"Kiwis are flightless birds from New Zealand.") + len(b"# Heading\nThe kakapo is a nocturnal parrot.")
    )


def test_list_pages_in_order_with_cursors(client: OpenAI, http: httpx.Client) -> None:
    ids = [client.vector_stores.create(name=f"s{i}").id for i in range(7)]
    assert [store.id for store in client.vector_stores.list(limit=3, order="asc")] == ids
    assert [store.id for store in client.vector_stores.list(limit=2)] == ids[::-1]
    page = http.get("/vector_stores", params={"limit": 2, "order": "asc", "after": ids[1]}).json()
    check_fields(page, "ListVectorStoresResponse")
    assert [item["id"] for item in page["data"]] == ids[2:4] and page["has_more"] is True
    for item in page["data"]:
        conforms(item, VectorStore, "VectorStoreObject")


def test_expires_after_turns_an_idle_store_expired_by_the_clock(client: OpenAI, control: httpx.Client) -> None:
    store = client.vector_stores.create(name="short-lived", expires_after={"anchor": "last_active_at", "days": 2})
    assert store.expires_after is not None and store.expires_after.days == 2
    assert store.expires_at == store.last_active_at + 2 * DAY

    advance_clock(control, DAY)
    used = client.vector_stores.search(store.id, query="anything")
    assert used.data == []
    touched = client.vector_stores.retrieve(store.id)
    assert touched.status == "completed"
    assert touched.last_active_at >= store.last_active_at + DAY, "a search is activity"
    assert touched.expires_at == touched.last_active_at + 2 * DAY

    advance_clock(control, 2 * DAY + 1)
    expired = client.vector_stores.retrieve(store.id)
    assert expired.status == "expired" and expired.expires_at == touched.expires_at
    with pytest.raises(BadRequestError) as refused:
        client.vector_stores.search(store.id, query="anything")
    assert refused.value.code == "vector_store_expired"
    assert "expired" in refused.value.message
    with pytest.raises(BadRequestError):
        client.vector_stores.files.create(vector_store_id=store.id, file_id=upload(client, "a.txt", "text"))
    renamed = client.vector_stores.update(store.id, name="still expired")
    assert renamed.status == "expired", "expiry is final"
    assert client.vector_stores.delete(store.id).deleted


def test_expires_after_can_be_changed_and_removed(client: OpenAI) -> None:
    store = client.vector_stores.create()
    changed = client.vector_stores.update(store.id, expires_after={"anchor": "last_active_at", "days": 7})
    assert changed.expires_at == changed.last_active_at + 7 * DAY
    removed = client.vector_stores.update(store.id, expires_after=None)
    assert removed.expires_after is None and removed.expires_at is None


@pytest.mark.parametrize(
    ("body", "param", "message"),
    [
        (
            {"expires_after": {"anchor": "last_active_at", "days": 0}},
            "expires_after.days",
            "Invalid 'expires_after.days': integer below minimum value. Expected a value >= 1, but got 0 instead.",
        ),
        (
            {"expires_after": {"anchor": "last_active_at", "days": 366}},
            "expires_after.days",
            "Invalid 'expires_after.days': integer above maximum value. Expected a value <= 365, but got 366 instead.",
        ),
        (
            {"expires_after": {"anchor": "created_at", "days": 3}},
            "expires_after.anchor",
            "Invalid value: 'created_at'. Supported values are: 'last_active_at'.",
        ),
        (
            {"file_ids": [f"file-{i}" for i in range(501)]},
            "file_ids",
            "Invalid 'file_ids': array too long. Expected an array with maximum length 500, but got an array with "
            "length 501 instead.",
        ),
        (
            {
                "chunking_strategy": {
                    "type": "static",
                    "static": {"max_chunk_size_tokens": 99, "chunk_overlap_tokens": 0},
                }
            },
            "chunking_strategy.static.max_chunk_size_tokens",
            "Invalid 'chunking_strategy.static.max_chunk_size_tokens': integer below minimum value. Expected a value "
            ">= 100, but got 99 instead.",
        ),
        (
            {"file_ids": ["file-nope"]},
            "file_ids",
            "Invalid 'file_ids': no file found with id 'file-nope'.",
        ),
    ],
)
def test_create_limits_are_real_style_400s(http: httpx.Client, body: dict, param: str, message: str) -> None:
    response = http.post("/vector_stores", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["param"], error["message"], error["type"]) == (param, message, "invalid_request_error")


def test_unknown_parameter_is_refused(http: httpx.Client) -> None:
    response = http.post("/vector_stores", json={"name": "x", "colour": "blue"})
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "Unrecognized request argument supplied: colour"


def test_beta_header_is_accepted_but_not_required(server: RunningServer, api_key: str) -> None:
    with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {api_key}"}) as plain:
        created = plain.post("/vector_stores", json={"name": "no header"})
        assert created.status_code == 200, created.text
        assert plain.get(f"/vector_stores/{created.json()['id']}").status_code == 200
        with_header = plain.get("/vector_stores", headers={"OpenAI-Beta": "assistants=v2"})
        assert with_header.status_code == 200


def test_another_tenant_gets_404_and_sees_nothing(client: OpenAI, server: RunningServer) -> None:
    mine = client.vector_stores.create(name="private")
    stranger = OpenAI(base_url=server.base_url, api_key="sk-another-tenant-vs", max_retries=0)
    for call in (
        lambda: stranger.vector_stores.retrieve(mine.id),
        lambda: stranger.vector_stores.update(mine.id, name="x"),
        lambda: stranger.vector_stores.delete(mine.id),
        lambda: stranger.vector_stores.search(mine.id, query="q"),
        lambda: stranger.vector_stores.files.list(vector_store_id=mine.id),
    ):
        with pytest.raises(NotFoundError) as hidden:
            call()
        assert hidden.value.body["message"] == f"No vector store found with id '{mine.id}'."  # type: ignore[index]
    assert mine.id not in [store.id for store in stranger.vector_stores.list()]
    assert client.vector_stores.retrieve(mine.id).name == "private"


def test_reset_deletes_the_tenants_vector_stores(client: OpenAI, control: httpx.Client, server: RunningServer) -> None:
    file_id = upload(client, "keep.txt", "reset me")
    store = client.vector_stores.create(file_ids=[file_id])
    other = OpenAI(base_url=server.base_url, api_key="sk-reset-bystander", max_retries=0)
    theirs = other.vector_stores.create(name="bystander")
    assert control.post("/reset").status_code == 200
    with pytest.raises(NotFoundError):
        client.vector_stores.retrieve(store.id)
    assert list(client.vector_stores.list()) == []
    assert other.vector_stores.retrieve(theirs.id).name == "bystander", "another tenant keeps its stores"
