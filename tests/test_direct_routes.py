"""`api.fast_routes` serves the API's routes without FastAPI's per-request solving: it must answer exactly what
FastAPI answers. The oracle is a second server with `EMULATOR_DIRECT_ROUTES=false` (every request through
FastAPI); each request below goes to both, and the two answers must be equal."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from emulator.api.fast_routes import DirectRoutes
from emulator.app import create_app
from emulator.settings import Settings
from tests.extra_server import extra_server
from tests.server import RunningServer

KEY = "sk-direct-routes"
V2 = {"Authorization": f"Bearer {KEY}", "OpenAI-Beta": "assistants=v2"}
JSON = {**V2, "Content-Type": "application/json"}
OTHER_ID = re.compile(r"\b(msg|step|run|thread|asst|file|vs)_[A-Za-z0-9]{20,}\b")
"""Ids made while answering (the run's message and steps)."""
STEP_CONTENT = "step_details.tool_calls[*].file_search.results[*].content"


@pytest.fixture(scope="module")
def fastapi_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with extra_server(tmp_path_factory.mktemp("fastapi-only"), EMULATOR_DIRECT_ROUTES="false") as running:
        yield running


class Side:
    """One server, with a thread, a message and a run of its own (their ids differ between the two)."""

    def __init__(self, running: RunningServer) -> None:
        self.http = httpx.Client(base_url=running.root_url, timeout=30)
        assistant = self.http.post("/v1/assistants", headers=JSON, json={"model": "gpt-4o"}).json()
        self.names = {assistant["id"]: "ASSISTANT"}
        thread = self.http.post("/v1/threads", headers=JSON, json={}).json()
        self.names[thread["id"]] = "THREAD"
        message = self.http.post(
            f"/v1/threads/{thread['id']}/messages", headers=JSON, json={"role": "user", "content": "hi"}
        ).json()
        self.names[message["id"]] = "MESSAGE"
        run = self.http.post(
            f"/v1/threads/{thread['id']}/runs", headers=JSON, json={"assistant_id": assistant["id"]}
        ).json()
        self.names[run["id"]] = "RUN"

    def path(self, template: str) -> str:
        for real, name in self.names.items():
            template = template.replace(name, real)
        return template

    def answer(self, method: str, template: str, **kwargs: Any) -> tuple[int, Any]:
        response = self.http.request(method, self.path(template), **kwargs)
        text = response.text
        for real, name in self.names.items():
            text = text.replace(real, name)
        text = OTHER_ID.sub("ID", text)
        body = json.loads(text) if response.headers.get("content-type", "").startswith("application/json") else text
        return response.status_code, _without_instance_fields(body)


def _without_instance_fields(body: Any) -> Any:
    """Fresh objects differ in their ids and times between the two servers; their shape and values must not."""
    if isinstance(body, dict):
        return {
            key: "*" if key in ("id", "created_at", "first_id", "last_id", "expires_at", "started_at",
                                "completed_at") and value is not None else _without_instance_fields(value)
            for key, value in body.items()
        }
    if isinstance(body, list):
        return [_without_instance_fields(item) for item in body]
    return body


REQUESTS: list[tuple[str, str, dict[str, Any]]] = [
    # bodies: absent, empty, null, not an object, not JSON, another content type, extra and wrong fields
    ("POST", "/v1/threads", {"headers": V2}),
    ("POST", "/v1/threads", {"headers": JSON, "content": b""}),
    ("POST", "/v1/threads", {"headers": JSON, "content": b"null"}),
    ("POST", "/v1/threads", {"headers": JSON, "content": b"[]"}),
    ("POST", "/v1/threads", {"headers": JSON, "content": b"{not json"}),
    ("POST", "/v1/threads", {"headers": {**V2, "Content-Type": "text/plain"}, "content": b"{}"}),
    ("POST", "/v1/threads", {"headers": V2, "content": b"{}"}),
    ("POST", "/v1/threads", {"headers": {**V2, "Content-Type": "application/merge-patch+json"}, "content": b"{}"}),
    ("POST", "/v1/threads", {"headers": JSON, "content": b'{"metadata": {"a": "\xff"}}'}),
    ("POST", "/v1/threads", {"headers": JSON, "content": b"[" * 100_000}),
    ("POST", "/v1/threads", {"headers": {"Content-Type": "application/json"}, "content": b'{"a": "\xff"}'}),
    ("POST", "/v1/threads", {"headers": JSON, "json": {"foo": 1}}),
    ("POST", "/v1/threads", {"headers": JSON, "json": {"metadata": {"k": 1}}}),
    ("POST", "/v1/threads", {"headers": JSON, "json": {"messages": [{"role": "user", "content": []}]}}),
    ("POST", "/v1/threads/THREAD/messages", {"headers": JSON, "json": {"content": "no role"}}),
    ("POST", "/v1/threads/THREAD/messages", {"headers": JSON, "json": {"role": "user", "content": 5}}),
    ("POST", "/v1/threads/THREAD/messages", {"headers": JSON, "json": {"role": "robot", "content": "x"}}),
    ("POST", "/v1/threads/THREAD/messages", {"headers": JSON, "content": b'{"role": "user",'}),
    ("POST", "/v1/threads/THREAD/messages", {"headers": JSON}),
    ("POST", "/v1/threads/thread_missing/messages", {"headers": JSON, "json": {"role": "user", "content": "x"}}),
    ("POST", "/v1/threads/THREAD/messages/MESSAGE", {"headers": JSON, "json": {"metadata": {"a": "b"}}}),
    ("POST", "/v1/assistants", {"headers": JSON, "json": {"model": "gpt-4o", "tools": [{"type": "nope"}]}}),
    ("POST", "/v1/threads/runs", {"headers": JSON, "json": {"assistant_id": 3}}),
    ("POST", "/v1/threads/THREAD/runs", {"headers": JSON, "json": {"assistant_id": "ASSISTANT", "top_p": 7}}),
    # query parameters: bounds, types, enums, lists
    ("GET", "/v1/threads/THREAD/messages", {"headers": V2, "params": {"limit": 0}}),
    ("GET", "/v1/threads/THREAD/messages", {"headers": V2, "params": {"limit": 101}}),
    ("GET", "/v1/threads/THREAD/messages", {"headers": V2, "params": {"limit": "ten"}}),
    ("GET", "/v1/threads/THREAD/messages", {"headers": V2, "params": {"order": "sideways"}}),
    ("GET", "/v1/threads/THREAD/messages", {"headers": V2, "params": {"order": "asc", "run_id": "RUN"}}),
    ("GET", "/v1/threads/THREAD/messages", {"headers": V2, "params": {"after": "MESSAGE"}}),
    ("GET", "/v1/threads/THREAD/runs/RUN/steps", {"headers": V2, "params": {"include[]": "step_details.bogus"}}),
    ("GET", "/v1/threads/THREAD/runs/RUN/steps", {"headers": V2, "params": {"include[]": STEP_CONTENT}}),
    ("GET", "/v1/threads/THREAD/runs/RUN/steps", {"headers": V2, "params": {"limit": 0, "include[]": "x"}}),
    # headers: key and beta, and which error wins when several apply
    ("GET", "/v1/threads/THREAD", {}),
    ("GET", "/v1/threads/THREAD", {"headers": {"Authorization": f"Bearer {KEY}"}}),
    ("GET", "/v1/threads/THREAD", {"headers": {"Authorization": f"Bearer {KEY}", "OpenAI-Beta": "assistants=v1"}}),
    ("POST", "/v1/threads", {"headers": {"Content-Type": "application/json"}, "content": b"{oops"}),
    ("GET", "/v1/threads/THREAD/messages", {"headers": {"Authorization": f"Bearer {KEY}"}, "params": {"limit": 0}}),
    ("GET", "/v1/models", {"headers": {"Authorization": f"Bearer {KEY}"}}),
    # paths and methods FastAPI resolves: missing objects, trailing slash, wrong method, unknown path
    ("GET", "/v1/threads/thread_missing", {"headers": V2}),
    ("GET", "/v1/threads/THREAD/messages/msg_missing", {"headers": V2}),
    ("GET", "/v1/threads/THREAD/", {"headers": V2}),
    ("PUT", "/v1/threads/THREAD", {"headers": JSON, "json": {}}),
    ("GET", "/v1/nothing/here", {"headers": V2}),
    ("GET", "/v1/files", {"headers": V2, "params": {"purpose": "assistants"}}),
    ("GET", "/v1/threads/THREAD/messages/MESSAGE", {"headers": V2}),
    # bad input, refused alike: text that is not Unicode or holds NUL, nesting, NUL in a URL, size, multipart
    ("POST", "/v1/threads", {"headers": JSON, "content": b'{"metadata": {"a": "\\ud800"}}'}),
    ("POST", "/v1/threads", {"headers": JSON, "content": b'{"metadata": {"\\u0000": "a"}}'}),
    ("POST", "/v1/vector_stores", {"headers": JSON, "content": b'{"name": "a\\u0000"}'}),
    ("POST", "/v1/assistants", {"headers": JSON, "json": {"model": "gpt-4o", "metadata": {
        "a": json.loads("[" * 70 + "]" * 70)}}}),
    ("POST", "/v1/threads/THREAD/messages", {"headers": JSON, "json": {"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": ""}}]}}),
    ("GET", "/v1/threads/thread_%00", {"headers": V2}),
    ("GET", "/v1/threads/THREAD/messages", {"headers": V2, "params": {"after": "msg_\x00"}}),
    ("POST", "/v1/threads", {"headers": JSON, "content": b'{"metadata": {"a": "' + b"x" * (33 * 1024 * 1024)}),
    ("POST", "/v1/files", {"headers": {**V2, "Content-Type": "multipart/form-data; boundary=b"}, "content":
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="a\rb"\r\n\r\nx\r\n--b--'}),
]


@pytest.mark.parametrize(("method", "template", "kwargs"), REQUESTS, ids=range(len(REQUESTS)))
def test_direct_routes_answer_what_fastapi_answers(
    server: RunningServer, fastapi_only: RunningServer, method: str, template: str, kwargs: dict[str, Any]
) -> None:
    direct, through_fastapi = Side(server), Side(fastapi_only)
    expected = through_fastapi.answer(method, template, **kwargs)
    assert direct.answer(method, template, **kwargs) == expected
    assert expected[0] != 422 and not (isinstance(expected[1], dict) and "detail" in expected[1])


def test_the_hot_routes_are_served_directly() -> None:
    app = create_app(Settings())
    direct = DirectRoutes(app=app, fastapi_app=app)
    for method, path in [
        ("POST", "/v1/threads"), ("POST", "/v1/threads/runs"), ("GET", "/v1/threads/t1"),
        ("POST", "/v1/threads/t1/messages"), ("GET", "/v1/threads/t1/messages"), ("GET", "/v1/threads/t1/messages/m1"),
        ("POST", "/v1/threads/t1/runs"), ("GET", "/v1/threads/t1/runs/r1"), ("GET", "/v1/assistants/a1"),
        ("POST", "/v1/files"), ("GET", "/v1/vector_stores/vs1/files"),
    ]:
        found = direct.match(method, path)
        assert found is not None and found[0].endpoint is not None, (method, path)
    thread_run = direct.match("POST", "/v1/threads/runs")
    assert thread_run is not None and thread_run[1] == {}, "/threads/runs is create-and-run, not modify thread 'runs'"
    assert direct.match("GET", "/v1/threads//messages") is None, "an empty segment is no path parameter"
    assert direct.match("GET", "/v1/models/gpt-4o") is None, "{model:path} is left to FastAPI's regex"
