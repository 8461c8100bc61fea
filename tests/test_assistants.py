"""Assistants through the official SDK and raw HTTP, checked against the SDK types and the official schema."""

from __future__ import annotations

import httpx
import pytest
from openai import BadRequestError, NotFoundError, OpenAI
from openai.types.beta import Assistant, AssistantDeleted

from tests.oracle import check_fields, conforms

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def test_create_retrieve_update_delete_round_trip(client: OpenAI, http: httpx.Client) -> None:
    created = client.beta.assistants.create(
        model="gpt-4o", name="Helper", description="Helps", instructions="Be brief.",
        tools=[{"type": "code_interpreter"}, WEATHER_TOOL], metadata={"team": "qa"}, temperature=0.5,
    )
    assert created.id.startswith("asst_") and len(created.id) == len("asst_") + 24
    assert (created.name, created.description, created.instructions) == ("Helper", "Helps", "Be brief.")
    assert created.temperature == 0.5 and created.top_p == 1.0 and created.response_format == "auto"
    assert [tool.type for tool in created.tools] == ["code_interpreter", "function"]

    raw = http.get(f"/assistants/{created.id}").json()
    conforms(raw, Assistant, "AssistantObject")
    assert raw["created_at"] == created.created_at and isinstance(raw["created_at"], int)

    updated = client.beta.assistants.update(created.id, name="Renamed", metadata={"team": "dev"})
    assert updated.name == "Renamed" and updated.metadata == {"team": "dev"}
    assert updated.instructions == "Be brief.", "fields not named in the update are kept"

    deleted = client.beta.assistants.delete(created.id)
    assert deleted == AssistantDeleted(id=created.id, object="assistant.deleted", deleted=True)
    with pytest.raises(NotFoundError) as missing:
        client.beta.assistants.retrieve(created.id)
    assert missing.value.body["message"] == f"No assistant found with id '{created.id}'."  # type: ignore[index]


def test_auto_pagination_walks_every_assistant_in_order(client: OpenAI) -> None:
    ids = [client.beta.assistants.create(model="gpt-4o-mini", name=f"a{i}").id for i in range(45)]
    listed = [assistant.id for assistant in client.beta.assistants.list(limit=10, order="asc")]
    assert listed == ids
    newest_first = [assistant.id for assistant in client.beta.assistants.list(limit=7)]
    assert newest_first == ids[::-1]


def test_list_page_fields_and_cursors(client: OpenAI, http: httpx.Client) -> None:
    ids = [client.beta.assistants.create(model="gpt-4o").id for _ in range(5)]
    page = http.get("/assistants", params={"limit": 2, "order": "asc"}).json()
    check_fields(page, "ListAssistantsResponse")
    assert [item["id"] for item in page["data"]] == ids[:2]
    assert (page["first_id"], page["last_id"], page["has_more"]) == (ids[0], ids[1], True)
    after = http.get("/assistants", params={"limit": 2, "order": "asc", "after": ids[1]}).json()
    assert [item["id"] for item in after["data"]] == ids[2:4]
    before = http.get("/assistants", params={"limit": 2, "order": "asc", "before": ids[4]}).json()
    assert [item["id"] for item in before["data"]] == ids[2:4]
    last = http.get("/assistants", params={"limit": 10, "order": "asc", "after": ids[2]}).json()
    assert [item["id"] for item in last["data"]] == ids[3:] and last["has_more"] is False


def test_unknown_model_is_refused(client: OpenAI) -> None:
    with pytest.raises(BadRequestError) as refused:
        client.beta.assistants.create(model="gpt-nonexistent")
    assert refused.value.body == {  # type: ignore[comparison-overlap]
        "message": "The requested model 'gpt-nonexistent' does not exist.",
        "type": "invalid_request_error", "param": "model", "code": "model_not_found",
    }


def test_another_tenant_cannot_see_the_assistant(client: OpenAI, server) -> None:  # type: ignore[no-untyped-def]
    mine = client.beta.assistants.create(model="gpt-4o")
    stranger = OpenAI(base_url=server.base_url, api_key="sk-someone-else", max_retries=0)
    with pytest.raises(NotFoundError) as hidden:
        stranger.beta.assistants.retrieve(mine.id)
    assert hidden.value.body["message"] == f"No assistant found with id '{mine.id}'."  # type: ignore[index]
    assert mine.id not in [assistant.id for assistant in stranger.beta.assistants.list()]
