"""Rate limits (`/_emulator/rate_limits`): off by default; management RPM with `x-ratelimit-*` headers and 429s
(per method and run creation: tests/test_control_management_limits.py); tier presets; per-model RPM/TPM on model
calls (a refused call fails its run and counts nothing); windows by the emulator clock."""

from __future__ import annotations

import asyncio
import re
from collections import Counter

import httpx
import pytest
from openai import OpenAI, RateLimitError

from emulator import limits
from tests.control_helpers import WEATHER, advance, beta_headers, consumed, fresh_window, script
from tests.server import RunningServer

RESET = re.compile(r"^([0-9]+m)?[0-9]+s$")


def _limits(control: httpx.Client, **config: object) -> dict:
    response = control.post("/rate_limits", json=config)
    assert response.status_code == 200, response.text
    return response.json()["rate_limits"]


def _ratelimit_headers(response: httpx.Response) -> dict[str, str]:
    return {name: value for name, value in response.headers.items() if name.startswith("x-ratelimit-")}


def _run(client: OpenAI, model: str, text: str = "hi", **kwargs: object):  # type: ignore[no-untyped-def]
    assistant = client.beta.assistants.create(model=model, **kwargs)  # type: ignore[arg-type]
    thread = client.beta.threads.create(messages=[{"role": "user", "content": text}])
    return client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)


def test_rate_limits_are_off_by_default(http: httpx.Client) -> None:
    for path in ("/models", "/assistants"):
        response = http.get(path)
        assert response.status_code == 200
        assert _ratelimit_headers(response) == {}
    assert "retry-after" not in http.get("/models").headers


def test_management_rpm_headers_429_and_window_reset(client: OpenAI, http: httpx.Client, control: httpx.Client) -> None:
    fresh_window(control)
    assert _limits(control, management={"get": 3}) == {"management": {"get": 3}}
    remaining = []
    for _ in range(3):
        response = http.get("/assistants")
        assert response.status_code == 200
        headers = _ratelimit_headers(response)
        assert headers["x-ratelimit-limit-requests"] == "3"
        assert RESET.match(headers["x-ratelimit-reset-requests"]), headers
        remaining.append(int(headers["x-ratelimit-remaining-requests"]))
    assert remaining == [2, 1, 0]

    refused = http.get("/vector_stores")
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert (error["type"], error["code"], error["param"]) == ("requests", "rate_limit_exceeded", None)
    retry_after = int(refused.headers["retry-after"])
    assert 0 < retry_after <= 60 and refused.headers["retry-after-ms"] == str(retry_after * 1000)
    assert error["message"] == (
        f"Rate limit reached for GET requests per min (RPM) on the Assistants endpoints: Limit 3, Used 3, "
        f"Requested 1. Please try again in {retry_after}s."
    )
    assert _ratelimit_headers(refused)["x-ratelimit-remaining-requests"] == "0"
    assert refused.headers["x-request-id"].startswith("req_")
    with pytest.raises(RateLimitError) as raised:
        client.beta.assistants.list()
    assert raised.value.code == "rate_limit_exceeded"

    advance(control, 60)
    response = http.get("/assistants")
    assert response.status_code == 200 and response.json()["data"] == []
    assert _ratelimit_headers(response)["x-ratelimit-remaining-requests"] == "2", "a new window"

    assert control.delete("/rate_limits").json() == {"rate_limits": None}
    assert _ratelimit_headers(http.get("/assistants")) == {}


def test_concurrent_requests_never_exceed_the_limit(server: RunningServer, api_key: str, control: httpx.Client) -> None:
    fresh_window(control)
    _limits(control, management={"get": 10})

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server.base_url, headers=beta_headers(api_key), timeout=30) as http:
            return await asyncio.gather(*(http.get("/assistants") for _ in range(30)))

    statuses = Counter(response.status_code for response in asyncio.run(burst()))
    assert statuses == {200: 10, 429: 20}


def test_the_control_plane_is_not_rate_limited(control: httpx.Client) -> None:
    fresh_window(control)
    _limits(control, management={"get": 1})
    assert all(control.get("/script").status_code == 200 for _ in range(5))


@pytest.mark.parametrize("tier", ["free", "tier-1", "tier-2", "tier-5"])
def test_tier_presets_give_the_preset_numbers(http: httpx.Client, control: httpx.Client, tier: str) -> None:
    fresh_window(control)
    assert _limits(control, tier=tier) == {"tier": tier}
    headers = _ratelimit_headers(http.get("/assistants"))
    expected = limits.RATE_LIMIT_TIERS[tier]["management"]["get"]
    assert headers["x-ratelimit-limit-requests"] == str(expected)
    assert headers["x-ratelimit-remaining-requests"] == str(expected - 1)


def test_explicit_numbers_override_the_tier(http: httpx.Client, control: httpx.Client) -> None:
    fresh_window(control)
    _limits(control, tier="tier-1", management={"get": 2})
    assert _ratelimit_headers(http.get("/assistants"))["x-ratelimit-limit-requests"] == "2"
    assert [http.get("/assistants").status_code for _ in range(2)] == [200, 429]
    assert _ratelimit_headers(http.post("/threads"))["x-ratelimit-limit-requests"] == "300", "the tier's POST limit"


def test_the_free_tier_allows_three_model_calls_a_minute(client: OpenAI, control: httpx.Client) -> None:
    fresh_window(control)
    _limits(control, tier="free")
    assert limits.RATE_LIMIT_TIERS["free"]["model_requests_per_minute"] == 3
    statuses = [_run(client, "gpt-5-mini").status for _ in range(4)]
    assert statuses == ["completed", "completed", "completed", "failed"]


def test_a_small_tpm_fails_the_run_with_rate_limit_exceeded(client: OpenAI, control: httpx.Client) -> None:
    fresh_window(control)
    _limits(control, models={"gpt-5.5": {"tokens_per_minute": 10}})
    run = _run(client, "gpt-5.5", "Tell me about the weather in Paris and in Rome, please.")
    assert run.status == "failed"
    assert run.last_error.code == "rate_limit_exceeded"  # type: ignore[union-attr]
    assert re.fullmatch(
        r"Rate limit reached for tokens per min \(TPM\): Limit 10, Used 0, Requested [0-9]+\. "
        r"Please try again in [0-9]+s\.",
        run.last_error.message,  # type: ignore[union-attr]
    ), run.last_error
    assert run.usage is None or run.usage.total_tokens == 0, "a refused call is not billed"
    assert _run(client, "gpt-5-mini").status == "completed", "another model has no limit"


def test_model_rpm_counts_each_call_and_resets_with_the_clock(client: OpenAI, control: httpx.Client) -> None:
    fresh_window(control)
    _limits(control, models={"gpt-5.5": {"requests_per_minute": 1}})
    assert _run(client, "gpt-5.5").status == "completed"
    second = _run(client, "gpt-5.5")
    assert second.status == "failed"
    assert second.last_error.code == "rate_limit_exceeded"  # type: ignore[union-attr]
    assert second.last_error.message.startswith(  # type: ignore[union-attr]
        "Rate limit reached for requests per min (RPM): Limit 1, Used 1, Requested 1."
    )
    assert _run(client, "gpt-5-mini").status == "completed"
    advance(control, 60)
    assert _run(client, "gpt-5.5").status == "completed"


def test_every_model_call_of_a_run_counts(client: OpenAI, control: httpx.Client) -> None:
    """A run with a tool call makes two model calls: with RPM 1 the second one (after the outputs) is refused."""
    fresh_window(control)
    _limits(control, models={"*": {"requests_per_minute": 1}})
    run = _run(client, "gpt-5.5", "Please get weather for Paris", tools=[WEATHER])
    assert run.status == "requires_action"
    [call] = run.required_action.submit_tool_outputs.tool_calls  # type: ignore[union-attr]
    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id, thread_id=run.thread_id, tool_outputs=[{"tool_call_id": call.id, "output": "sunny"}]
    )
    assert run.status == "failed" and run.last_error.code == "rate_limit_exceeded"  # type: ignore[union-attr]
    # '*' gives every model without its own entry the same limit, counted per model.
    assert [_run(client, "gpt-5-mini").status for _ in range(2)] == ["completed", "failed"]


def test_a_refused_call_counts_neither_tokens_nor_a_request(client: OpenAI, control: httpx.Client) -> None:
    fresh_window(control)
    _limits(control, models={"gpt-5.5": {"requests_per_minute": 2, "tokens_per_minute": 100}})
    long = _run(client, "gpt-5.5", " ".join(["weather"] * 300))
    assert long.status == "failed" and long.last_error.code == "rate_limit_exceeded"  # type: ignore[union-attr]
    # Had the refused call counted its ~300 tokens or its request, neither of these two would fit.
    first, second = _run(client, "gpt-5.5"), _run(client, "gpt-5.5")
    assert (first.status, second.status) == ("completed", "completed")
    assert first.usage.total_tokens + second.usage.total_tokens <= 100  # type: ignore[union-attr]
    assert _run(client, "gpt-5.5").status == "failed", "a third call is over the RPM"


def test_a_refused_call_leaves_the_scripted_turn_for_the_next_call(client: OpenAI, control: httpx.Client) -> None:
    fresh_window(control)
    script(control, {"type": "text", "text": "kept for later"})
    _limits(control, models={"*": {"tokens_per_minute": 1}})
    refused = _run(client, "gpt-5.5")
    assert refused.status == "failed"
    assert [turn["turn"]["text"] for turn in control.get("/script").json()["data"]] == ["kept for later"]
    assert consumed(control) == []
    control.delete("/rate_limits")
    run = _run(client, "gpt-5.5")
    assert run.status == "completed"
    assert client.beta.threads.messages.list(run.thread_id, limit=1).data[0].content[0].text.value == "kept for later"  # type: ignore[union-attr]
    assert [turn["run_id"] for turn in consumed(control)] == [run.id]


def test_a_refused_model_call_ends_a_stream_with_run_failed(client: OpenAI, control: httpx.Client) -> None:
    fresh_window(control)
    _limits(control, models={"*": {"tokens_per_minute": 1}})
    assistant = client.beta.assistants.create(model="gpt-5.5")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
        names = [event.event for event in stream]
        final = stream.get_final_run()
    assert names[-1] == "thread.run.failed"
    assert final.status == "failed" and final.last_error.code == "rate_limit_exceeded"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"tier": "tier-9"}, "tier"),
        ({"management": {"post": 0}}, "management.post"),
        ({"requests_per_minute": 5}, "requests_per_minute"),
        ({"models": {"gpt-5.5": {"tokens_per_minute": -1}}}, "models.gpt-5.5.tokens_per_minute"),
    ],
)
def test_invalid_limits_are_400(control: httpx.Client, body: dict, param: str) -> None:
    response = control.post("/rate_limits", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


def test_normal_responses_carry_token_headers_that_follow_model_calls(
    client: OpenAI, http: httpx.Client, control: httpx.Client
) -> None:
    control.post("/rate_limits", json={"tier": "tier-1"}).raise_for_status()
    fresh_window(control)
    tpm = limits.RATE_LIMIT_TIERS["tier-1"]["model_tokens_per_minute"]
    before = http.get("/assistants")
    assert before.headers["x-ratelimit-limit-tokens"] == str(tpm)
    assert before.headers["x-ratelimit-remaining-tokens"] == str(tpm)
    assert re.fullmatch(r"(\d+m)?\d+s", before.headers["x-ratelimit-reset-tokens"])
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hello"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    spent = run.usage.total_tokens  # type: ignore[union-attr]
    after = http.get("/assistants")
    assert after.headers["x-ratelimit-remaining-tokens"] == str(tpm - spent)
