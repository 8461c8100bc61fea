"""Fault injection (`/_emulator/faults`): errors in the real envelope, one-shot rules, seeded probability,
latency, stream cuts; the SDK's own retries; listing, clearing and reset."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter

import httpx
import pytest
from openai import InternalServerError, OpenAI, RateLimitError

from tests.control_helpers import beta_headers, script, sse_events
from tests.server import RunningServer

MESSAGES = {
    429: "Rate limit reached (injected fault).",
    500: "The server had an error while processing your request. Sorry about that!",
    503: "The engine is currently overloaded, please try again later.",
}


def _faults(control: httpx.Client, *rules: dict) -> list[dict]:
    response = control.post("/faults", json={"rules": list(rules)})
    assert response.status_code == 200, response.text
    return response.json()["data"]


def _listed(control: httpx.Client) -> list[dict]:
    return control.get("/faults").json()["data"]


@pytest.mark.parametrize(
    ("status", "error_type", "code"),
    [(500, "server_error", None), (503, "server_error", None), (429, "requests", "rate_limit_exceeded")],
)
def test_an_error_fault_answers_the_openai_envelope_on_its_operation_only(
    http: httpx.Client, control: httpx.Client, status: int, error_type: str, code: str | None
) -> None:
    [rule] = _faults(
        control, {"match": {"operation": "createAssistant"}, "effect": {"type": "error", "status": status}}
    )
    assert rule["id"].startswith("fault_") and rule["object"] == "emulator.fault_rule"
    assert (rule["hits"], rule["fired"], rule["probability"], rule["times"]) == (0, 0, 1.0, None)

    response = http.post("/assistants", json={"model": "gpt-5.5"})
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"].startswith("req_")
    assert response.json() == {"error": {"message": MESSAGES[status], "type": error_type, "param": None, "code": code}}
    assert http.get("/assistants").status_code == 200, "other operations are untouched"
    assert http.get("/assistants").json()["data"] == [], "the failed create created nothing"
    assert http.post("/assistants", json={"model": "gpt-5.5"}).status_code == status, "no `times`: every time"
    assert [(r["hits"], r["fired"]) for r in _listed(control)] == [(2, 2)]


def test_a_fault_matches_a_path_glob_and_a_method(client: OpenAI, http: httpx.Client, control: httpx.Client) -> None:
    _faults(
        control,
        {
            "match": {"method": "POST", "path": "/v1/threads/*/messages"},
            "effect": {"type": "error", "status": 503, "message": "Messages are down."},
        },
    )
    thread = client.beta.threads.create()  # POST /v1/threads: not matched
    response = http.post(f"/threads/{thread.id}/messages", json={"role": "user", "content": "hi"})
    assert response.status_code == 503
    assert response.json()["error"]["message"] == "Messages are down."
    assert http.get(f"/threads/{thread.id}/messages").status_code == 200, "GET is another method"
    assert http.post(f"/threads/{thread.id}", json={"metadata": {"a": "b"}}).status_code == 200
    with pytest.raises(InternalServerError) as raised:
        client.beta.threads.messages.create(thread.id, role="user", content="hi")
    assert raised.value.status_code == 503
    assert raised.value.body == {  # type: ignore[comparison-overlap]
        "message": "Messages are down.",
        "type": "server_error",
        "param": None,
        "code": None,
    }


def test_a_one_shot_fault_fires_once(http: httpx.Client, control: httpx.Client) -> None:
    _faults(control, {"match": {"operation": "listModels"}, "effect": {"type": "error", "status": 500}, "times": 1})
    assert [http.get("/models").status_code for _ in range(3)] == [500, 200, 200]
    [rule] = _listed(control)
    assert (rule["hits"], rule["fired"], rule["times"]) == (1, 1, 1), "a spent rule matches nothing any more"


def test_times_holds_under_concurrent_requests(server: RunningServer, api_key: str, control: httpx.Client) -> None:
    _faults(control, {"match": {"operation": "listModels"}, "effect": {"type": "error", "status": 500}, "times": 3})

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server.base_url, headers=beta_headers(api_key), timeout=30) as http:
            return await asyncio.gather(*(http.get("/models") for _ in range(20)))

    assert Counter(response.status_code for response in asyncio.run(burst())) == {500: 3, 200: 17}
    assert _listed(control)[0]["fired"] == 3


def test_a_spent_rule_lets_the_next_rule_match(http: httpx.Client, control: httpx.Client) -> None:
    _faults(
        control,
        {"match": {"operation": "listModels"}, "effect": {"type": "error", "status": 500}, "times": 2},
        {"match": {"operation": "listModels"}, "effect": {"type": "error", "status": 503}, "times": 1},
    )
    assert [http.get("/models").status_code for _ in range(4)] == [500, 500, 503, 200]
    assert [(rule["hits"], rule["fired"]) for rule in _listed(control)] == [(2, 2), (1, 1)]


def test_the_sdk_retries_through_a_one_shot_500(server: RunningServer, api_key: str, control: httpx.Client) -> None:
    _faults(
        control,
        {
            "match": {"operation": "createAssistant"},
            "effect": {"type": "error", "status": 500, "retry_after_seconds": 0.05},
            "times": 1,
        },
    )
    retrying = OpenAI(base_url=server.base_url, api_key=api_key, max_retries=2)
    assistant = retrying.beta.assistants.create(model="gpt-5.5", name="survivor")
    assert assistant.id.startswith("asst_") and assistant.name == "survivor"
    [rule] = _listed(control)
    assert (rule["hits"], rule["fired"]) == (1, 1), "the first attempt failed, the SDK's retry went through"
    assert [a.id for a in retrying.beta.assistants.list()] == [assistant.id], "exactly one assistant"


def test_an_injected_429_carries_retry_after_and_the_sdk_without_retries_raises(
    client: OpenAI, http: httpx.Client, control: httpx.Client
) -> None:
    _faults(
        control,
        {
            "match": {"operation": "listAssistants"},
            "effect": {"type": "error", "status": 429, "retry_after_seconds": 2},
        },
    )
    response = http.get("/assistants")
    assert response.status_code == 429
    assert (response.headers["retry-after"], response.headers["retry-after-ms"]) == ("2", "2000")
    with pytest.raises(RateLimitError) as raised:
        client.beta.assistants.list()
    assert raised.value.code == "rate_limit_exceeded"


def _outcomes(server: RunningServer, rules: list[dict], count: int = 20) -> tuple[str, list[dict]]:
    """A new tenant adds `rules` and sends `count` requests; 'x' for a fault, '.' for a success."""
    key = f"sk-test-{uuid.uuid4().hex}"
    with (
        httpx.Client(base_url=f"{server.root_url}/_emulator", headers={"Authorization": f"Bearer {key}"}) as control,
        httpx.Client(base_url=server.base_url, headers=beta_headers(key)) as http,
    ):
        _faults(control, *rules)
        pattern = "".join("x" if http.get("/models").status_code == 503 else "." for _ in range(count))
        return pattern, _listed(control)


def test_a_seeded_probability_replays_exactly_under_a_new_tenant(server: RunningServer) -> None:
    rules = [{"match": {"operation": "listModels"}, "effect": {"type": "error", "status": 503}, "probability": 0.5}]
    first, listed = _outcomes(server, [{**rules[0], "seed": 7}])
    again, _ = _outcomes(server, [{**rules[0], "seed": 7}])
    assert first == again, "the same rules replay the same outcomes"
    assert 0 < first.count("x") < 20, f"a coin, not all-or-nothing: {first}"
    assert (listed[0]["hits"], listed[0]["fired"]) == (20, first.count("x"))
    other_seed, _ = _outcomes(server, [{**rules[0], "seed": 8}])
    assert other_seed != first, "another seed draws another sequence"


def test_a_latency_fault_delays_the_matched_request(http: httpx.Client, control: httpx.Client) -> None:
    _faults(control, {"match": {"operation": "listModels"}, "effect": {"type": "latency", "ms": 400}})
    started = time.monotonic()
    response = http.get("/models")
    elapsed = time.monotonic() - started
    assert response.status_code == 200 and response.json()["object"] == "list"
    assert elapsed >= 0.4 * 0.9, elapsed
    assert http.get("/assistants").status_code == 200
    assert [(rule["hits"], rule["fired"]) for rule in _listed(control)] == [(1, 1)], "only the matched request"


def test_a_stream_cut_ends_the_stream_after_n_events_and_the_run_can_be_polled(
    client: OpenAI, http: httpx.Client, control: httpx.Client
) -> None:
    assistant = client.beta.assistants.create(model="gpt-5.5")
    script(control, {"type": "text", "text": "one two three four five six"})
    _faults(control, {"match": {"operation": "createRun"}, "effect": {"type": "stream_cut", "after_events": 3}})
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    response = http.post(f"/threads/{thread.id}/runs", json={"assistant_id": assistant.id, "stream": True})
    assert response.status_code == 200
    events = sse_events(response.text)
    assert [name for name, _ in events] == ["thread.run.created", "thread.run.queued", "thread.run.in_progress"]
    assert "[DONE]" not in response.text and "event: done" not in response.text
    run_id = events[0][1]["id"]

    run = client.beta.threads.runs.poll(run_id=run_id, thread_id=thread.id)
    assert run.status == "completed"
    answer = client.beta.threads.messages.list(thread.id, limit=1).data[0]
    assert answer.role == "assistant" and answer.content[0].text.value == "one two three four five six"  # type: ignore[union-attr]


def test_a_stream_cut_through_the_sdk_leaves_a_resumable_run(client: OpenAI, control: httpx.Client) -> None:
    assistant = client.beta.assistants.create(model="gpt-5.5")
    _faults(control, {"match": {"path": "/v1/threads/runs"}, "effect": {"type": "stream_cut", "after_events": 2}})
    stream = client.beta.threads.create_and_run(
        assistant_id=assistant.id, stream=True, thread={"messages": [{"role": "user", "content": "hello"}]}
    )
    received = list(stream)
    assert [event.event for event in received] == ["thread.created", "thread.run.created"]
    thread_id, run_id = received[0].data.id, received[1].data.id
    run = client.beta.threads.runs.poll(run_id=run_id, thread_id=thread_id)
    assert run.status == "completed"
    assert client.beta.threads.messages.list(thread_id, limit=1).data[0].content[0].text.value == "You said: hello"  # type: ignore[union-attr]


def test_rules_are_listed_in_order_and_cleared(http: httpx.Client, control: httpx.Client) -> None:
    added = _faults(
        control,
        {
            "match": {"operation": "listModels"},
            "effect": {"type": "error", "status": 500},
            "probability": 0.25,
            "seed": 3,
        },
        {"match": {"method": "GET", "path": "/v1/models/*"}, "effect": {"type": "latency", "ms": 1}, "times": 2},
    )
    listed = _listed(control)
    assert listed == added
    assert listed[0]["match"] == {"method": None, "path": None, "operation": "listModels"}
    assert listed[0]["effect"] == {"type": "error", "status": 500, "message": None, "retry_after_seconds": None}
    assert (listed[0]["probability"], listed[0]["seed"]) == (0.25, 3)
    assert listed[1]["effect"] == {"type": "latency", "ms": 1} and listed[1]["times"] == 2
    assert control.delete("/faults").json() == {"deleted": 2}
    assert _listed(control) == []
    assert all(http.get("/models").status_code == 200 for _ in range(5))


def test_first_matching_rule_wins(http: httpx.Client, control: httpx.Client) -> None:
    _faults(
        control,
        {"match": {"operation": "listModels"}, "effect": {"type": "error", "status": 503}},
        {"match": {"path": "/v1/*"}, "effect": {"type": "error", "status": 500}},
    )
    assert http.get("/models").status_code == 503
    assert http.get("/assistants").status_code == 500
    assert [(rule["hits"], rule["fired"]) for rule in _listed(control)] == [(1, 1), (1, 1)]


def test_faults_belong_to_their_tenant_and_spare_the_control_plane(
    server: RunningServer, http: httpx.Client, control: httpx.Client
) -> None:
    _faults(control, {"match": {"path": "*"}, "effect": {"type": "error", "status": 500}})
    assert http.get("/models").status_code == 500
    other_key = f"sk-test-{uuid.uuid4().hex}"
    assert httpx.get(f"{server.base_url}/models", headers=beta_headers(other_key)).status_code == 200
    assert (
        httpx.get(f"{server.root_url}/_emulator/faults", headers={"Authorization": f"Bearer {other_key}"}).json()[
            "data"
        ]
        == []
    )
    assert control.get("/faults").status_code == 200, "the control plane is never faulted"
    assert control.get("/clock").status_code == 200


@pytest.mark.parametrize(
    ("rule", "param"),
    [
        (
            {"match": {"operation": "makeCoffee"}, "effect": {"type": "error", "status": 500}},
            "rules[0].match.operation",
        ),
        ({"effect": {"type": "error", "status": 404}}, "rules[0].effect.status"),
        ({"effect": {"type": "error", "status": 500}, "probability": 1.5}, "rules[0].probability"),
        ({"effect": {"type": "error", "status": 500}, "times": 0}, "rules[0].times"),
        ({"effect": {"type": "teleport"}}, "rules[0].effect.type"),
        ({"effect": {"type": "stream_cut", "after_events": -1}}, "rules[0].effect.after_events"),
        ({"match": {"method": "PATCH"}, "effect": {"type": "error", "status": 500}}, "rules[0].match.method"),
    ],
)
def test_invalid_rules_are_400(control: httpx.Client, rule: dict, param: str) -> None:
    response = control.post("/faults", json={"rules": [rule]})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", param), error
    assert _listed(control) == []


def test_reset_clears_scripts_faults_and_limits(client: OpenAI, http: httpx.Client, control: httpx.Client) -> None:
    script(control, {"type": "text", "text": "pending"})
    _faults(control, {"match": {"operation": "listModels"}, "effect": {"type": "error", "status": 500}})
    assert control.post("/rate_limits", json={"management": {"get": 1000}}).status_code == 200
    assert http.get("/assistants").headers["x-ratelimit-limit-requests"] == "1000"
    assert http.get("/models").status_code == 500
    assert control.post("/reset").json() == {"reset": True}
    assert control.get("/script").json()["data"] == []
    assert _listed(control) == []
    response = http.get("/models")
    assert response.status_code == 200
    assert not [name for name in http.get("/assistants").headers if name.startswith("x-ratelimit-")]
    assistant = client.beta.assistants.create(model="gpt-5.5")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert client.beta.threads.messages.list(thread.id, limit=1).data[0].content[0].text.value == "You said: hi"  # type: ignore[union-attr]
