"""The control plane belongs to tenants: every `/_emulator/` route but health needs a key that `/v1` accepts
(the allow-list applies) and acts on that key's tenant; a refused key counts no fault hit and no rate charge;
the latency profile reads and clears like scripts and faults."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from openai import OpenAI

from tests.control_helpers import beta_headers
from tests.extra_server import extra_server
from tests.server import RunningServer, run_server
from tests.storage import count, tenant_of

LISTED = f"sk-listed-{uuid.uuid4().hex}"
NO_KEY_START = "You didn't provide an API key."

ROUTES: list[tuple[str, str, Any]] = [
    ("GET", "/clock", None),
    ("POST", "/clock/advance", {"seconds": 61 * 86_400}),
    ("POST", "/reset", None),
    ("POST", "/script", {"turns": [{"type": "text", "text": "x"}]}),
    ("GET", "/script", None),
    ("DELETE", "/script", None),
    ("GET", "/script/consumed", None),
    ("POST", "/faults", {"rules": [{"effect": {"type": "error", "status": 500}}]}),
    ("GET", "/faults", None),
    ("DELETE", "/faults", None),
    ("POST", "/rate_limits", {"management": {"get": 1}}),
    ("DELETE", "/rate_limits", None),
    ("POST", "/latency", {"ttft_ms": 1}),
    ("GET", "/latency", None),
    ("DELETE", "/latency", None),
    ("GET", "/usage", None),
]
"""Every route of the control plane but health."""


def _clock(server: RunningServer, key: str) -> int:
    response = httpx.get(f"{server.root_url}/_emulator/clock", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text
    return response.json()["now"]


def test_every_control_route_but_health_needs_a_key(server: RunningServer, api_key: str, client: OpenAI) -> None:
    thread = client.beta.threads.create()
    before = _clock(server, api_key)
    for headers in ({}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer"}):
        for method, path, body in ROUTES:
            response = httpx.request(method, f"{server.root_url}/_emulator{path}", headers=headers, json=body)
            assert response.status_code == 401, (method, path, response.text)
            error = response.json()["error"]
            assert error["type"] == "invalid_request_error" and error["message"].startswith(NO_KEY_START)
    assert _clock(server, api_key) - before < 30, "no anonymous advance moved the tenant's clock"
    assert client.beta.threads.retrieve(thread.id).id == thread.id
    health = httpx.get(f"{server.root_url}/_emulator/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"


@pytest.fixture(scope="module")
def listed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with extra_server(tmp_path_factory.mktemp("listed"), EMULATOR_API_KEYS=LISTED) as running:
        yield running


def test_the_allow_list_applies_to_the_control_plane(listed: RunningServer) -> None:
    member = OpenAI(base_url=listed.base_url, api_key=LISTED, max_retries=0)
    thread = member.beta.threads.create()
    before = _clock(listed, LISTED)
    stranger = {"Authorization": "Bearer sk-not-on-the-list"}
    for method, path, body in ROUTES:
        response = httpx.request(method, f"{listed.root_url}/_emulator{path}", headers=stranger, json=body)
        assert response.status_code == 401, (method, path, response.text)
        assert response.json()["error"] == {
            "message": "Incorrect API key provided: sk-*list. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    assert _clock(listed, LISTED) - before < 30, "the refused advance moved no clock"
    assert member.beta.threads.retrieve(thread.id).id == thread.id, "and swept nothing"
    assert count(listed, "tenant_clocks") == 0


def test_a_refused_key_counts_no_fault_hit_and_no_rate_charge(
    listed: RunningServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A key set up on one replica and left out of another's allow-list (say, an allow-list being changed):
    where it is refused, it is refused before the fault rules and rate limits of its tenant look at it."""
    key = f"sk-leaving-{uuid.uuid4().hex}"
    data_dir = tmp_path_factory.mktemp("welcoming")
    with run_server(data_dir, listed.database_url, EMULATOR_API_KEYS=f"{LISTED},{key}") as welcoming:
        control = httpx.Client(
            base_url=f"{welcoming.root_url}/_emulator", headers={"Authorization": f"Bearer {key}"}, timeout=30
        )
        one_shot = {"match": {"method": "POST", "path": "/v1/threads"}, "effect": {"type": "error", "status": 503}}
        assert control.post("/faults", json={"rules": [{**one_shot, "times": 1}]}).status_code == 200
        assert control.post("/rate_limits", json={"management": {"post": 100}}).status_code == 200

        for _ in range(3):
            refused = httpx.post(f"{listed.base_url}/threads", headers=beta_headers(key))
            assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key", refused.text
        [rule] = control.get("/faults").json()["data"]
        assert (rule["hits"], rule["fired"]) == (0, 0), "the refused requests did not count as the rule's matches"
        assert count(welcoming, "rate_counters", tenant=tenant_of(key)) == 0, "nor against the rate limit"

        accepted = [httpx.post(f"{welcoming.base_url}/threads", headers=beta_headers(key)) for _ in range(2)]
        assert [response.status_code for response in accepted] == [503, 200], (
            "the one-shot rule is still live for the key where it is accepted"
        )
        assert count(welcoming, "rate_counters", tenant=tenant_of(key)) >= 1, "where it is accepted, it is charged"
        control.close()


def test_latency_reads_and_clears_like_scripts_and_faults(client: OpenAI, control: httpx.Client) -> None:
    assert control.get("/latency").json() == {"latency": None}
    profile = {"ttft_ms": 0, "tokens_per_second": 0.01, "models": {"gpt-5-mini": {"ttft_ms": 5}}}
    saved = control.post("/latency", json=profile).json()["latency"]
    assert control.get("/latency").json() == {"latency": saved}
    assert saved == {
        "ttft_ms": 0,
        "tokens_per_second": 0.01,
        "models": {"gpt-5-mini": {"ttft_ms": 5, "tokens_per_second": 0.0}},
    }
    assistant = client.beta.assistants.create(model="gpt-4o")
    question: Any = {"messages": [{"role": "user", "content": "hi"}]}
    slow = client.beta.threads.create_and_run(assistant_id=assistant.id, thread=question)
    assert client.beta.threads.runs.retrieve(slow.id, thread_id=slow.thread_id).status == "in_progress"

    cleared = control.delete("/latency")
    assert (cleared.status_code, cleared.json()) == (200, {"latency": None})
    assert control.get("/latency").json() == {"latency": None}
    fast = client.beta.threads.create_and_run(assistant_id=assistant.id, thread=question)
    assert client.beta.threads.runs.retrieve(fast.id, thread_id=fast.thread_id).status == "completed", (
        "the server's defaults apply again"
    )
    assert control.delete("/latency").json() == {"latency": None}, "clearing twice is fine"
