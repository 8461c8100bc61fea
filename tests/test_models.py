"""`/v1/models`: the model table, through the official SDK and raw HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from openai import BadRequestError, NotFoundError, OpenAI
from openai.types import Model

from tests.extra_server import extra_server
from tests.oracle import check_fields, conforms
from tests.server import RunningServer

REQUIRED_MODELS = {"gpt-5.5", "gpt-5.4", "gpt-5-mini", "gpt-4o", "gpt-4o-mini", "gpt-4.1"}


def test_list_models(client: OpenAI, server: RunningServer, api_key: str) -> None:
    listed = {model.id: model for model in client.models.list()}
    assert set(listed) >= REQUIRED_MODELS

    response = httpx.get(f"{server.base_url}/models", headers={"Authorization": f"Bearer {api_key}"})
    assert response.status_code == 200, "no beta header is needed on models"
    body = response.json()
    check_fields(body, "ListModelsResponse")
    assert body["object"] == "list"
    for item in body["data"]:
        model = conforms(item, Model, "Model")
        assert model.object == "model" and isinstance(item["created"], int) and model.owned_by
    assert [item["id"] for item in body["data"]] == list(listed)
    assert len(set(listed)) == len(body["data"]), "no duplicates"


def test_retrieve_model(client: OpenAI, http: httpx.Client) -> None:
    for model_id in sorted(REQUIRED_MODELS):
        model = client.models.retrieve(model_id)
        assert model.id == model_id and model.object == "model"
        raw = http.get(f"/models/{model_id}").json()
        assert conforms(raw, Model, "Model") == model


def test_unknown_model_is_404(client: OpenAI, http: httpx.Client) -> None:
    with pytest.raises(NotFoundError) as missing:
        client.models.retrieve("gpt-nonexistent")
    assert missing.value.body == {  # type: ignore[comparison-overlap]
        "message": "The model 'gpt-nonexistent' does not exist",
        "type": "invalid_request_error",
        "param": "model",
        "code": "model_not_found",
    }
    response = http.get("/models/ft:gpt-4o:acme:custom:abc123")
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "The model 'ft:gpt-4o:acme:custom:abc123' does not exist"


def test_every_listed_model_is_accepted_by_an_assistant(client: OpenAI) -> None:
    for model in client.models.list():
        assert client.beta.assistants.create(model=model.id).model == model.id


@pytest.fixture(scope="module")
def any_model_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with extra_server(tmp_path_factory.mktemp("any-model"), EMULATOR_ACCEPT_ANY_MODEL="true") as running:
        yield running


def test_unknown_models_can_be_accepted_by_configuration(any_model_server: RunningServer, client: OpenAI) -> None:
    lenient = OpenAI(base_url=any_model_server.base_url, api_key="sk-lenient", max_retries=0)
    assert lenient.beta.assistants.create(model="my-local-llama").model == "my-local-llama"
    updated = lenient.beta.assistants.update(lenient.beta.assistants.list().data[0].id, model="another-one")
    assert updated.model == "another-one"
    with pytest.raises(BadRequestError) as strict:
        client.beta.assistants.create(model="my-local-llama")
    assert strict.value.body["code"] == "model_not_found"  # type: ignore[index]
