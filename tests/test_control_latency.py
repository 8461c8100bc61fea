"""Latency profiles (`/_emulator/latency`): time to first token and tokens per second, per tenant or per model;
polled runs wait by the emulator clock, streams wait and pace their deltas in real time."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
from openai import OpenAI

from emulator import tokens
from tests.control_helpers import advance, deltas, script, sse_events
from tests.server import RunningServer


def _latency(control: httpx.Client, **profile: object) -> dict:
    response = control.post("/latency", json=profile)
    assert response.status_code == 200, response.text
    return response.json()["latency"]


def _start(client: OpenAI, model: str = "gpt-5.5", text: str = "hi") -> tuple[str, str]:
    assistant = client.beta.assistants.create(model=model)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": text}])
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    return thread.id, run.id


def _status(client: OpenAI, thread_id: str, run_id: str) -> str:
    return client.beta.threads.runs.retrieve(run_id=run_id, thread_id=thread_id).status


def test_ttft_keeps_a_polled_run_in_progress_until_it_has_passed(client: OpenAI, control: httpx.Client) -> None:
    assert _latency(control, ttft_ms=600) == {"ttft_ms": 600, "tokens_per_second": 0.0}
    thread_id, run_id = _start(client)
    assert _status(client, thread_id, run_id) == "in_progress"  # the model call was made by now
    time.sleep(0.65)
    assert _status(client, thread_id, run_id) == "completed"
    assert client.beta.threads.messages.list(thread_id, limit=1).data[0].content[0].text.value == "You said: hi"  # type: ignore[union-attr]


def test_tokens_per_second_sets_a_polled_runs_duration_by_the_clock(client: OpenAI, control: httpx.Client) -> None:
    text = " ".join(f"word{i}" for i in range(30))
    completion_tokens = tokens.count(text, "o200k_base")
    assert completion_tokens >= 30
    script(control, {"type": "text", "text": text})
    _latency(control, tokens_per_second=1)
    thread_id, run_id = _start(client)
    assert _status(client, thread_id, run_id) == "in_progress"
    advance(control, completion_tokens // 2)
    assert _status(client, thread_id, run_id) == "in_progress", "half the generation time has passed"
    advance(control, completion_tokens - completion_tokens // 2 + 1)
    run = client.beta.threads.runs.retrieve(run_id=run_id, thread_id=thread_id)
    assert run.status == "completed" and run.usage.completion_tokens == completion_tokens  # type: ignore[union-attr]


def test_a_model_profile_overrides_the_tenants(client: OpenAI, control: httpx.Client) -> None:
    saved = _latency(control, ttft_ms=0, models={"gpt-5-mini": {"ttft_ms": 60_000}})
    assert saved == {
        "ttft_ms": 0,
        "tokens_per_second": 0.0,
        "models": {"gpt-5-mini": {"ttft_ms": 60_000, "tokens_per_second": 0.0}},
    }
    fast_thread, fast_run = _start(client, "gpt-5.5")
    slow_thread, slow_run = _start(client, "gpt-5-mini")
    assert _status(client, fast_thread, fast_run) == "completed"
    assert _status(client, slow_thread, slow_run) == "in_progress"
    advance(control, 61)
    assert _status(client, slow_thread, slow_run) == "completed"


def test_a_latency_profile_belongs_to_its_tenant(client: OpenAI, control: httpx.Client, server: RunningServer) -> None:
    _latency(control, ttft_ms=600_000)
    other = OpenAI(base_url=server.base_url, api_key=f"sk-test-{uuid.uuid4().hex}", max_retries=0)
    thread_id, run_id = _start(other)
    assert _status(other, thread_id, run_id) == "completed"
    thread_id, run_id = _start(client)
    assert _status(client, thread_id, run_id) == "in_progress"
    _latency(control)  # back to zero
    assert _status(client, thread_id, run_id) == "in_progress", "a call already made keeps its timing"
    client.beta.threads.runs.cancel(run_id=run_id, thread_id=thread_id)


def _timed_stream(http: httpx.Client, thread_id: str, assistant_id: str) -> tuple[list[tuple[float, str]], str]:
    """Stream a run; return (seconds since the request, event name) for each event and the whole body."""
    started = time.monotonic()
    stamps, body = [], ""
    with http.stream("POST", f"/threads/{thread_id}/runs", json={"assistant_id": assistant_id, "stream": True}) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            body += line + "\n"
            if line.startswith("event: "):
                stamps.append((time.monotonic() - started, line[len("event: ") :]))
    return stamps, body


def test_a_stream_waits_the_ttft_before_the_first_delta(
    client: OpenAI, http: httpx.Client, control: httpx.Client
) -> None:
    _latency(control, ttft_ms=300)
    assistant = client.beta.assistants.create(model="gpt-5.5")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    stamps, body = _timed_stream(http, thread.id, assistant.id)
    first_delta = next(at for at, name in stamps if name == "thread.message.delta")
    assert first_delta >= 0.3 * 0.9, stamps
    assert stamps[0][0] < first_delta, "the run's own events come before the wait"
    assert [name for _, name in stamps][-2:] == ["thread.run.completed", "done"]
    assert "".join(deltas(sse_events(body))) == "You said: hi"


def test_tokens_per_second_paces_stream_deltas(client: OpenAI, http: httpx.Client, control: httpx.Client) -> None:
    words = " ".join(f"w{i}" for i in range(10))
    script(control, {"type": "text", "text": words})
    _latency(control, tokens_per_second=20)
    assistant = client.beta.assistants.create(model="gpt-5.5")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "go"}])
    stamps, body = _timed_stream(http, thread.id, assistant.id)
    pieces = deltas(sse_events(body))
    assert len(pieces) == 10 and "".join(pieces) == words
    delta_times = [at for at, name in stamps if name == "thread.message.delta"]
    assert delta_times[-1] >= len(pieces) / 20 * 0.9, delta_times
    assert delta_times[-1] - delta_times[0] >= (len(pieces) - 1) / 20 * 0.9, "spread over time, not a burst"


def test_a_scripted_delay_holds_a_stream_in_real_time(
    client: OpenAI, http: httpx.Client, control: httpx.Client
) -> None:
    script(control, {"type": "delay", "seconds": 0.3}, {"type": "text", "text": "late"})
    assistant = client.beta.assistants.create(model="gpt-5.5")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    stamps, body = _timed_stream(http, thread.id, assistant.id)
    assert next(at for at, name in stamps if name == "thread.message.delta") >= 0.3 * 0.9
    assert deltas(sse_events(body)) == ["late"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"ttft_ms": -1}, "ttft_ms"),
        ({"tokens_per_second": -2}, "tokens_per_second"),
        ({"models": {"gpt-5.5": {"ttft_ms": "slow"}}}, "models.gpt-5.5.ttft_ms"),
    ],
)
def test_invalid_profiles_are_400(control: httpx.Client, body: dict, param: str) -> None:
    response = control.post("/latency", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
