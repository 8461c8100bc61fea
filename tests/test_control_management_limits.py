"""Management rate limits as the hosted API published them (SPEC.md "Rate limits and cost"): per method on the
Assistants endpoints (GET 1,000, POST 300, DELETE 300 a minute in every tier), creating runs 200 a minute on top
of POST; files and models are not counted; a 429 names the limit it hit, with that limit's `x-ratelimit-*` and
`retry-after` headers. Through the SDK (no retries) and raw HTTP, windows by the emulator clock."""

from __future__ import annotations

import asyncio
import re
from collections import Counter

import httpx
import pytest
from openai import OpenAI, RateLimitError

from tests.control_helpers import advance, beta_headers, fresh_window
from tests.server import RunningServer

REFUSAL = re.compile(
    r"Rate limit reached for (?P<name>[A-Za-z ]+) per min \(RPM\) on the Assistants endpoints: "
    r"Limit (?P<limit>[0-9]+), Used (?P<used>[0-9]+), Requested 1\. Please try again in (?P<retry>[0-9]+)s\."
)


def _limits(control: httpx.Client, **config: object) -> None:
    response = control.post("/rate_limits", json=config)
    assert response.status_code == 200, response.text
    assert response.json()["rate_limits"] == config


def _request_headers(response: httpx.Response) -> tuple[str, str]:
    """(limit, remaining) of the `x-ratelimit-*-requests` headers."""
    return response.headers["x-ratelimit-limit-requests"], response.headers["x-ratelimit-remaining-requests"]


def _refused(raised: pytest.ExceptionInfo[RateLimitError], name: str, limit: int) -> None:
    """The SDK's 429: the message names the limit; the headers are that limit's, exhausted, with retry-after."""
    error, headers = raised.value, raised.value.response.headers
    assert (error.status_code, error.code, error.type) == (429, "rate_limit_exceeded", "requests")
    body = error.body
    assert isinstance(body, dict)
    match = REFUSAL.fullmatch(body["message"])
    assert match, body["message"]
    assert (match["name"], match["limit"], match["used"]) == (name, str(limit), str(limit))
    assert (headers["x-ratelimit-limit-requests"], headers["x-ratelimit-remaining-requests"]) == (str(limit), "0")
    assert headers["retry-after"] == match["retry"] and 0 < int(match["retry"]) <= 60
    assert headers["retry-after-ms"] == str(int(match["retry"]) * 1000)
    assert re.fullmatch(r"([0-9]+m)?[0-9]+s", headers["x-ratelimit-reset-requests"])


def test_every_tier_has_the_published_management_limits(http: httpx.Client, control: httpx.Client) -> None:
    fresh_window(control)
    _limits(control, tier="tier-5")
    assert _request_headers(http.get("/assistants")) == ("1000", "999")
    assistant = http.post("/assistants", json={"model": "gpt-4o"})
    assert _request_headers(assistant) == ("300", "299")
    thread = http.post("/threads")
    assert _request_headers(thread) == ("300", "298")
    run = http.post(f"/threads/{thread.json()['id']}/runs", json={"assistant_id": assistant.json()["id"]})
    assert run.status_code == 200
    assert _request_headers(run) == ("200", "199"), "the run-creation limit has the fewest left"
    assert _request_headers(http.delete(f"/assistants/{assistant.json()['id']}")) == ("300", "299")
    assert _request_headers(http.get("/vector_stores")) == ("1000", "998"), "GETs share one window"
    _limits(control, tier="free")
    assert _request_headers(http.get("/assistants")) == ("1000", "997"), "independent of tier"


def test_files_and_models_are_not_counted(client: OpenAI, http: httpx.Client, control: httpx.Client) -> None:
    fresh_window(control)
    _limits(control, tier="tier-1")
    upload = http.post("/files", files={"file": ("a.txt", b"a")}, data={"purpose": "assistants"})
    for response in (http.get("/models"), upload, http.get(f"/files/{upload.json()['id']}")):
        assert response.status_code == 200 and "x-ratelimit-limit-requests" not in response.headers, response.headers
    assert _request_headers(http.get("/assistants")) == ("1000", "999")

    fresh_window(control)
    _limits(control, management={"get": 1, "post": 1, "delete": 1})
    for _ in range(3):
        listed = http.get("/models")
        assert listed.status_code == 200 and "x-ratelimit-limit-requests" not in listed.headers
        uploaded = client.files.create(file=("notes.txt", b"hello"), purpose="assistants")
        assert client.files.retrieve(uploaded.id).filename == "notes.txt"
        assert client.files.content(uploaded.id).read() == b"hello"
        assert client.files.delete(uploaded.id).deleted
    assert client.beta.assistants.list().data == []
    with pytest.raises(RateLimitError) as raised:
        client.vector_stores.list()
    _refused(raised, "GET requests", 1)


def test_each_method_has_its_own_limit_and_a_429_names_it(client: OpenAI, control: httpx.Client) -> None:
    fresh_window(control)
    _limits(control, management={"get": 2, "post": 1, "delete": 1})
    assistant = client.beta.assistants.create(model="gpt-4o")
    with pytest.raises(RateLimitError) as raised:
        client.beta.threads.create()
    _refused(raised, "POST requests", 1)

    assert client.beta.assistants.retrieve(assistant.id).id == assistant.id
    assert client.beta.assistants.list().data[0].id == assistant.id
    with pytest.raises(RateLimitError) as raised:
        client.beta.assistants.retrieve(assistant.id)
    _refused(raised, "GET requests", 2)

    assert client.beta.assistants.delete(assistant.id).deleted
    with pytest.raises(RateLimitError) as raised:
        client.beta.assistants.delete(assistant.id)
    _refused(raised, "DELETE requests", 1)

    advance(control, 60)
    thread = client.beta.threads.create()
    assert client.beta.threads.retrieve(thread.id).id == thread.id, "a new window of emulator time"


def test_creating_a_run_counts_against_post_and_the_run_limit(client: OpenAI, control: httpx.Client) -> None:
    fresh_window(control)
    _limits(control, management={"post": 6, "create_run": 1})
    assistant = client.beta.assistants.create(model="gpt-4o")
    first, second = client.beta.threads.create(), client.beta.threads.create()
    client.beta.threads.runs.create(thread_id=first.id, assistant_id=assistant.id)
    with pytest.raises(RateLimitError) as raised:
        client.beta.threads.runs.create(thread_id=second.id, assistant_id=assistant.id)
    _refused(raised, "runs created", 1)
    with pytest.raises(RateLimitError) as raised:
        client.beta.threads.create_and_run(assistant_id=assistant.id)
    _refused(raised, "runs created", 1)
    assert client.beta.threads.runs.list(thread_id=second.id).data == [], "nothing was created"

    # POSTs so far: assistant, two threads, one run = 4; the two refused run creations did not count.
    client.beta.threads.messages.create(thread_id=second.id, role="user", content="one")
    client.beta.threads.messages.create(thread_id=second.id, role="user", content="two")
    with pytest.raises(RateLimitError) as raised:
        client.beta.threads.messages.create(thread_id=second.id, role="user", content="three")
    _refused(raised, "POST requests", 6)


def test_a_run_creation_refused_by_post_names_post(client: OpenAI, control: httpx.Client) -> None:
    fresh_window(control)
    _limits(control, management={"post": 2, "create_run": 10})
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create()
    with pytest.raises(RateLimitError) as raised:
        client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    _refused(raised, "POST requests", 2)


def test_concurrent_run_creations_never_exceed_either_limit(
    server: RunningServer, api_key: str, http: httpx.Client, control: httpx.Client
) -> None:
    fresh_window(control)
    _limits(control, management={"post": 100, "create_run": 5})
    assistant_id = http.post("/assistants", json={"model": "gpt-4o"}).json()["id"]

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server.base_url, headers=beta_headers(api_key), timeout=30) as client:
            body = {"assistant_id": assistant_id}
            return await asyncio.gather(*(client.post("/threads/runs", json=body) for _ in range(20)))

    responses = asyncio.run(burst())
    assert Counter(response.status_code for response in responses) == {200: 5, 429: 15}
    assert {REFUSAL.fullmatch(r.json()["error"]["message"])["name"] for r in responses if r.status_code == 429} == {  # type: ignore[index]
        "runs created"
    }
    assert _request_headers(http.post("/threads")) == ("100", "93"), "1 assistant + 5 runs + this thread"


def test_the_former_single_number_is_refused_with_a_pointer(control: httpx.Client) -> None:
    response = control.post("/rate_limits", json={"requests_per_minute": 60})
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", "requests_per_minute")
    assert error["message"].startswith("'requests_per_minute' is replaced by 'management'")
