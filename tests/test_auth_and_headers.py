"""Who may call, and what every answer carries: the API key (401s, the allow-list), the beta header, the
response headers, and tenant isolation (another key's id is exactly like an id that never existed)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from openai import AuthenticationError, NotFoundError, OpenAI

from tests.extra_server import extra_server
from tests.oracle import check_fields
from tests.server import RunningServer

NO_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer "
    "auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're "
    "accessing the API from your browser and are prompted for a username. You can obtain an API key from "
    "https://platform.openai.com/account/api-keys."
)
BETA_MISSING = (
    "You must provide the 'OpenAI-Beta' header to access the Assistants API. Please try again by setting the "
    "header 'OpenAI-Beta: assistants=v2'."
)
BETA_V1 = (
    "The v1 Assistants API has been deprecated. Please try again by setting the header 'OpenAI-Beta: assistants=v2'."
)
ALLOWED_KEYS = ("sk-allowed-one", "sk-allowed-two")


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    check_fields(body["error"], "Error")
    return body["error"]


# ---- the API key ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/assistants"),
        ("POST", "/v1/threads"),
        ("GET", "/v1/threads/thread_x/messages"),
        ("GET", "/v1/files"),
        ("GET", "/v1/models"),
        ("GET", "/v1/models/gpt-4o"),
        ("POST", "/_emulator/reset"),
    ],
)
def test_a_missing_key_is_401_with_the_real_message(server: RunningServer, method: str, path: str) -> None:
    with httpx.Client(base_url=server.root_url) as raw:
        for headers in ({}, {"OpenAI-Beta": "assistants=v2"}, {"Authorization": "Basic dXNlcjpwYXNz"}):
            error = error_of(raw.request(method, path, headers=headers), 401)
            assert error == {"message": NO_KEY, "type": "invalid_request_error", "param": None, "code": None}


def test_the_key_is_checked_before_the_beta_header(server: RunningServer) -> None:
    """No key and no beta header: the 401 wins, as on the real API."""
    assert error_of(httpx.get(f"{server.base_url}/assistants"), 401)["message"] == NO_KEY


@pytest.fixture(scope="module")
def allow_list_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    keys = f" {ALLOWED_KEYS[0]} ,{ALLOWED_KEYS[1]}"
    with extra_server(tmp_path_factory.mktemp("allow-list"), EMULATOR_API_KEYS=keys) as running:
        yield running


def test_allow_list_admits_its_keys_and_refuses_others(allow_list_server: RunningServer) -> None:
    for key in ALLOWED_KEYS:
        client = OpenAI(base_url=allow_list_server.base_url, api_key=key, max_retries=0)
        thread = client.beta.threads.create()
        assert client.beta.threads.retrieve(thread.id).id == thread.id

    stranger = OpenAI(base_url=allow_list_server.base_url, api_key="sk-not-on-the-list", max_retries=0)
    for call in (stranger.beta.threads.create, stranger.files.list, stranger.models.list):
        with pytest.raises(AuthenticationError) as refused:
            call()
        assert refused.value.status_code == 401
        assert refused.value.body == {  # type: ignore[comparison-overlap]
            "message": "Incorrect API key provided: sk-*list. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    raw = httpx.get(f"{allow_list_server.base_url}/files", headers={"Authorization": "Bearer sk-short"})
    assert error_of(raw, 401)["code"] == "invalid_api_key"
    assert error_of(httpx.get(f"{allow_list_server.base_url}/files"), 401)["message"] == NO_KEY
    # The control plane's tenant endpoints follow the same list; health needs no key at all.
    reset = httpx.post(f"{allow_list_server.root_url}/_emulator/reset", headers={"Authorization": "Bearer sk-nope"})
    assert error_of(reset, 401)["code"] == "invalid_api_key"
    assert httpx.get(f"{allow_list_server.root_url}/_emulator/health").status_code == 200


# ---- the beta header ------------------------------------------------------------------------------------------


def test_beta_header_is_required_on_assistants_threads_and_messages(server: RunningServer, api_key: str) -> None:
    auth = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=server.base_url, headers={**auth, "OpenAI-Beta": "assistants=v2"}) as beta:
        thread_id = beta.post("/threads").json()["id"]
        message_id = beta.post(f"/threads/{thread_id}/messages", json={"role": "user", "content": "x"}).json()["id"]
        assistant_id = beta.post("/assistants", json={"model": "gpt-4o"}).json()["id"]
    requests = [
        ("GET", "/assistants", None),
        ("POST", "/assistants", {"model": "gpt-4o"}),
        ("GET", f"/assistants/{assistant_id}", None),
        ("POST", f"/assistants/{assistant_id}", {"name": "x"}),
        ("DELETE", f"/assistants/{assistant_id}", None),
        ("POST", "/threads", {}),
        ("GET", f"/threads/{thread_id}", None),
        ("POST", f"/threads/{thread_id}", {"metadata": {}}),
        ("DELETE", f"/threads/{thread_id}", None),
        ("GET", f"/threads/{thread_id}/messages", None),
        ("POST", f"/threads/{thread_id}/messages", {"role": "user", "content": "x"}),
        ("GET", f"/threads/{thread_id}/messages/{message_id}", None),
        ("POST", f"/threads/{thread_id}/messages/{message_id}", {"metadata": {}}),
        ("DELETE", f"/threads/{thread_id}/messages/{message_id}", None),
    ]
    variants = [({}, BETA_MISSING), ({"OpenAI-Beta": "assistants=v1"}, BETA_V1), ({"OpenAI-Beta": "x=y"}, BETA_MISSING)]
    with httpx.Client(base_url=server.base_url) as raw:
        responses = [
            (raw.request(method, path, headers={**auth, **extra}, json=body), message)
            for method, path, body in requests
            for extra, message in variants
        ]
    for response, message in responses:
        error = error_of(response, 400)
        assert error == {"message": message, "type": "invalid_request_error", "param": None, "code": "invalid_beta"}
        assert "OpenAI-Beta" in error["message"]
    with httpx.Client(base_url=server.base_url, headers={**auth, "OpenAI-Beta": "assistants=v2"}) as beta:
        assert beta.get(f"/threads/{thread_id}").status_code == 200, "the refused DELETE deleted nothing"
        assert beta.get(f"/assistants/{assistant_id}").status_code == 200
        assert [m["id"] for m in beta.get(f"/threads/{thread_id}/messages").json()["data"]] == [message_id]


def test_beta_header_may_list_several_betas(http: httpx.Client) -> None:
    response = http.post("/threads", headers={"OpenAI-Beta": "other=v1, assistants=v2"})
    assert response.status_code == 200 and response.json()["object"] == "thread"
    unknown_headers = {"X-Stainless-Lang": "python", "X-Stainless-Future-Thing": "1"}
    assert http.post("/threads", headers=unknown_headers).status_code == 200


def test_files_and_models_need_no_beta_header(server: RunningServer, api_key: str) -> None:
    with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {api_key}"}) as plain:
        created = plain.post("/files", files={"file": ("a.txt", b"a")}, data={"purpose": "assistants"})
        assert created.status_code == 200, created.text
        file_id = created.json()["id"]
        for path in ("/files", f"/files/{file_id}", f"/files/{file_id}/content", "/models", "/models/gpt-4o"):
            assert plain.get(path).status_code == 200, path
        assert plain.delete(f"/files/{file_id}").json()["deleted"] is True


# ---- response headers -----------------------------------------------------------------------------------------


def test_every_response_carries_request_id_and_processing_ms(server: RunningServer, api_key: str) -> None:
    auth = {"Authorization": f"Bearer {api_key}"}
    beta = {**auth, "OpenAI-Beta": "assistants=v2"}
    file_id = httpx.post(
        f"{server.base_url}/files", headers=auth, files={"file": ("a.txt", b"a")}, data={"purpose": "assistants"}
    ).json()["id"]
    requests: list[tuple[str, str, dict[str, str], Any, int]] = [
        ("POST", "/v1/threads", beta, {}, 200),
        ("GET", "/v1/assistants", beta, None, 200),
        ("GET", f"/v1/files/{file_id}/content", auth, None, 200),
        ("GET", "/v1/models", auth, None, 200),
        ("GET", "/_emulator/health", {}, None, 200),
        ("GET", "/_emulator/clock", auth, None, 200),
        ("GET", "/_emulator/clock", {}, None, 401),
        ("GET", "/v1/assistants", {}, None, 401),
        ("GET", "/v1/assistants", auth, None, 400),
        ("POST", "/v1/threads", beta, {"foo": 1}, 400),
        ("GET", "/v1/threads/thread_nope", beta, None, 404),
        ("GET", "/v1/files/file-nope", auth, None, 404),
        ("GET", "/v1/no/such/route", auth, None, 404),
        ("PATCH", "/v1/threads", beta, None, 400),
    ]
    seen: set[str] = set()
    for method, path, headers, body, status in requests:
        response = httpx.request(method, f"{server.root_url}{path}", headers=headers, json=body)
        assert response.status_code == status, (path, response.text)
        request_id = response.headers.get("x-request-id", "")
        assert re.fullmatch(r"req_[0-9a-f]{32}", request_id), (path, request_id)
        assert request_id not in seen, "request ids are unique"
        seen.add(request_id)
        assert re.fullmatch(r"\d+", response.headers.get("openai-processing-ms", "")), path
        if path != f"/v1/files/{file_id}/content":
            assert response.headers["content-type"] == "application/json", path


# ---- tenant isolation -----------------------------------------------------------------------------------------


def strip_id(error: dict[str, Any], object_id: str, placeholder: str) -> dict[str, Any]:
    return {**error, "message": error["message"].replace(object_id, placeholder)}


def test_another_tenants_thread_is_exactly_like_none(client: OpenAI, server: RunningServer) -> None:
    thread = client.beta.threads.create(metadata={"owner": "me"})
    message = client.beta.threads.messages.create(thread.id, role="user", content="private")
    other = httpx.Client(
        base_url=server.base_url, headers={"Authorization": "Bearer sk-other-tenant", "OpenAI-Beta": "assistants=v2"}
    )
    never = "thread_" + "N" * 24
    requests = [
        ("GET", "/threads/{id}", None),
        ("POST", "/threads/{id}", {"metadata": {"owner": "thief"}}),
        ("DELETE", "/threads/{id}", None),
        ("GET", "/threads/{id}/messages", None),
        ("POST", "/threads/{id}/messages", {"role": "user", "content": "injected"}),
        ("GET", "/threads/{id}/messages/" + message.id, None),
        ("POST", "/threads/{id}/messages/" + message.id, {"metadata": {"x": "y"}}),
        ("DELETE", "/threads/{id}/messages/" + message.id, None),
    ]
    with other:
        for method, path, body in requests:
            theirs = other.request(method, path.format(id=thread.id), json=body)
            nobodys = other.request(method, path.format(id=never), json=body)
            assert theirs.status_code == nobodys.status_code == 404
            assert strip_id(error_of(theirs, 404), thread.id, "ID") == strip_id(error_of(nobodys, 404), never, "ID")
            assert error_of(theirs, 404)["message"] == f"No thread found with id '{thread.id}'."
    assert client.beta.threads.retrieve(thread.id).metadata == {"owner": "me"}, "untouched by the other tenant"
    assert [m.id for m in client.beta.threads.messages.list(thread.id)] == [message.id]
    assert client.beta.threads.messages.retrieve(message.id, thread_id=thread.id).metadata == {}


def test_another_tenants_file_is_exactly_like_none(client: OpenAI, server: RunningServer) -> None:
    mine = client.files.create(file=("secret.txt", b"secret"), purpose="assistants")
    other = OpenAI(base_url=server.base_url, api_key="sk-other-tenant-files", max_retries=0)
    never = "file-" + "N" * 24
    for call in (other.files.retrieve, other.files.content, other.files.delete):
        with pytest.raises(NotFoundError) as theirs:
            call(mine.id)
        with pytest.raises(NotFoundError) as nobodys:
            call(never)
        assert strip_id(theirs.value.body, mine.id, "ID") == strip_id(nobodys.value.body, never, "ID")  # type: ignore[arg-type]
    assert mine.id not in [f.id for f in other.files.list()]

    # Referencing it is refused exactly like an unknown id, wherever a file id is accepted.
    other_http = httpx.Client(
        base_url=server.base_url,
        headers={"Authorization": "Bearer sk-other-tenant-files", "OpenAI-Beta": "assistants=v2"},
    )
    with other_http:
        thread_id = other_http.post("/threads").json()["id"]
        bodies = [
            ("/threads", {"tool_resources": {"code_interpreter": {"file_ids": ["{id}"]}}}),
            ("/assistants", {"model": "gpt-4o", "tool_resources": {"code_interpreter": {"file_ids": ["{id}"]}}}),
            (
                f"/threads/{thread_id}/messages",
                {"role": "user", "content": "x", "attachments": [{"file_id": "{id}", "tools": []}]},
            ),
        ]
        for path, template in bodies:
            for file_id in (mine.id, never):
                body = _fill(template, file_id)
                error = error_of(other_http.post(path, json=body), 400)
                assert error["message"].endswith(f"no file found with id '{file_id}'."), error
    assert client.files.content(mine.id).read() == b"secret", "still there for its owner"


def _fill(template: Any, value: str) -> Any:
    if isinstance(template, dict):
        return {key: _fill(item, value) for key, item in template.items()}
    if isinstance(template, list):
        return [_fill(item, value) for item in template]
    return value if template == "{id}" else template


def test_a_server_error_is_the_envelope_with_the_headers(server: RunningServer, api_key: str) -> None:
    """An unexpected failure (here: a file's bytes removed from the data dir behind the server's back)."""
    auth = {"Authorization": f"Bearer {api_key}"}
    file_id = httpx.post(
        f"{server.base_url}/files", headers=auth, files={"file": ("gone.txt", b"gone")}, data={"purpose": "assistants"}
    ).json()["id"]
    (server.data_dir / "files" / file_id).unlink()
    response = httpx.get(f"{server.base_url}/files/{file_id}/content", headers=auth)
    assert error_of(response, 500) == {
        "message": "The server had an error while processing your request. Sorry about that!",
        "type": "server_error",
        "param": None,
        "code": None,
    }
    assert re.fullmatch(r"req_[0-9a-f]{32}", response.headers.get("x-request-id", ""))
    assert re.fullmatch(r"\d+", response.headers.get("openai-processing-ms", ""))
    assert httpx.get(f"{server.base_url}/files/{file_id}", headers=auth).status_code == 200, "the server lives on"
