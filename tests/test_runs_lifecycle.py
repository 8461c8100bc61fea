"""The life of a run over real HTTP: one active run per thread (also under 12 racing clients), expiry by the
emulator clock, cancel, and the `polls:N` progression policy (a second server started with
EMULATOR_RUN_PROGRESSION=polls:3).

The clock is global to a server and only moves forward: tests read it instead of assuming wall time.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from openai import BadRequestError, OpenAI

from tests.conftest import BETA
from tests.extra_server import extra_server
from tests.server import RunningServer
from tests.storage import count, query

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def invalid(message: str) -> dict[str, Any]:
    return {"message": message, "type": "invalid_request_error", "param": None, "code": None}


def refused(call: Any) -> dict[str, Any]:
    with pytest.raises(BadRequestError) as error:
        call()
    assert error.value.status_code == 400, "a state conflict is a 400, never a 409 that SDKs would retry"
    return error.value.body  # type: ignore[return-value]


def waiting_run(client: OpenAI, text: str = "weather please") -> tuple[str, Any]:
    """A thread whose run waits in requires_action for one get_weather output."""
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[WEATHER])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": text}])
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, tool_choice="required"
    )
    assert run.status == "requires_action"
    return thread.id, run


def advance(control: httpx.Client, seconds: int) -> int:
    response = control.post("/clock/advance", json={"seconds": seconds})
    assert response.status_code == 200, response.text
    return response.json()["now"]


def steps_usage_sum(client: OpenAI, thread_id: str, run_id: str) -> dict[str, int]:
    steps = list(client.beta.threads.runs.steps.list(run_id, thread_id=thread_id))
    assert all(step.usage is not None for step in steps), [step.status for step in steps]
    keys = ("prompt_tokens", "completion_tokens", "total_tokens")
    return {key: sum(getattr(step.usage, key) for step in steps) for key in keys}


def test_one_active_run_per_thread(client: OpenAI) -> None:
    thread_id, run = waiting_run(client)
    runs = client.beta.threads.runs
    second = refused(lambda: runs.create(thread_id=thread_id, assistant_id=run.assistant_id))
    assert second == invalid(f"Thread {thread_id} already has an active run {run.id}.")
    message = refused(lambda: client.beta.threads.messages.create(thread_id, role="user", content="hello?"))
    assert message == invalid(f"Can't add messages to {thread_id} while a run {run.id} is active.")
    with_messages = refused(
        lambda: runs.create(
            thread_id=thread_id,
            assistant_id=run.assistant_id,
            additional_messages=[{"role": "user", "content": "sneaky"}],
        )
    )
    assert with_messages == second
    assert [m.content[0].text.value for m in client.beta.threads.messages.list(thread_id)] == ["weather please"]  # type: ignore[union-attr]
    assert [r.id for r in runs.list(thread_id)] == [run.id], "the refused runs left nothing behind"

    other = client.beta.threads.create_and_run_poll(
        assistant_id=run.assistant_id, thread={"messages": [{"role": "user", "content": "hi"}]}
    )
    assert other.status == "completed", "other threads are not held"

    (call,) = run.required_action.submit_tool_outputs.tool_calls
    done = runs.submit_tool_outputs_and_poll(
        run_id=run.id, thread_id=thread_id, tool_outputs=[{"tool_call_id": call.id, "output": "rain"}]
    )
    assert done.status == "completed"
    client.beta.threads.messages.create(thread_id, role="user", content="and tomorrow?")
    assert runs.create_and_poll(thread_id=thread_id, assistant_id=run.assistant_id, tool_choice="none").status == (
        "completed"
    )


RACERS = 12


def test_a_message_while_a_run_is_active_is_refused(client: OpenAI, control: httpx.Client) -> None:
    """Adding a message does not move the thread's run: as on the hosted API, an unfinished run blocks it (here
    the model takes 1.5 s to answer, so the run is still active, whether a runner has started it or not)."""
    control.post("/latency", json={"ttft_ms": 1500}).raise_for_status()
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    with pytest.raises(BadRequestError) as refused:
        client.beta.threads.messages.create(thread.id, role="user", content="too soon")
    assert refused.value.body["message"] == f"Can't add messages to {thread.id} while a run {run.id} is active."  # type: ignore[index]
    assert client.beta.threads.runs.poll(run.id, thread_id=thread.id, poll_interval_ms=100).status == "completed"
    added = client.beta.threads.messages.create(thread.id, role="user", content="now")
    assert added.content[0].text.value == "now"  # type: ignore[union-attr]


def test_racing_clients_start_exactly_one_run(
    client: OpenAI, server: RunningServer, api_key: str, control: httpx.Client
) -> None:
    control.post("/latency", json={"ttft_ms": 1500}).raise_for_status()  # the winner stays active while they race
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "go"}])
    barrier = threading.Barrier(RACERS)

    def race(_: int) -> httpx.Response:
        headers = {"Authorization": f"Bearer {api_key}", **BETA}
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as http:
            http.get("/models")  # connect before the start line
            barrier.wait()
            return http.post(f"/threads/{thread.id}/runs", json={"assistant_id": assistant.id})

    with concurrent.futures.ThreadPoolExecutor(RACERS) as pool:
        responses = list(pool.map(race, range(RACERS)))
    winners = [response.json() for response in responses if response.status_code == 200]
    losers = [response for response in responses if response.status_code != 200]
    assert len(winners) == 1, [response.text for response in responses]
    winner = winners[0]["id"]
    assert len(losers) == RACERS - 1
    for response in losers:
        assert (response.status_code, response.json()) == (
            400,
            {"error": invalid(f"Thread {thread.id} already has an active run {winner}.")},
        )
    assert query(server, "SELECT active_run_id FROM threads WHERE id = :id", id=thread.id) == [(winner,)]
    assert count(server, "runs", thread_id=thread.id) == 1
    client.beta.threads.runs.poll(winner, thread_id=thread.id, poll_interval_ms=100)
    listed = list(client.beta.threads.runs.list(thread.id))
    assert [run.id for run in listed] == [winner] and listed[0].status == "completed"
    assert query(server, "SELECT active_run_id FROM threads WHERE id = :id", id=thread.id) == [(None,)]


def test_a_run_waiting_for_outputs_expires_by_the_clock(client: OpenAI, control: httpx.Client) -> None:
    thread_id, run = waiting_run(client)
    runs = client.beta.threads.runs
    assert run.expires_at == run.created_at + 600
    advance(control, 590)
    assert runs.retrieve(run.id, thread_id=thread_id).status == "requires_action", "not yet"
    advance(control, 11)
    expired = runs.retrieve(run.id, thread_id=thread_id)
    assert expired.status == "expired" and expired.required_action is None
    assert expired.expires_at is None, "a run that can no longer expire shows no expires_at (as a finished run)"
    assert (expired.completed_at, expired.cancelled_at, expired.failed_at) == (None, None, None)
    assert expired.usage is not None and expired.usage.total_tokens > 0, "the tool call's tokens stay counted"
    assert expired.usage.model_dump() == steps_usage_sum(client, thread_id, run.id)
    (step,) = runs.steps.list(run.id, thread_id=thread_id)
    assert step.status == "expired" and step.expired_at is not None and step.expired_at >= run.expires_at

    (call,) = run.required_action.submit_tool_outputs.tool_calls
    outputs = [{"tool_call_id": call.id, "output": "too late"}]
    late = refused(lambda: runs.submit_tool_outputs(run.id, thread_id=thread_id, tool_outputs=outputs))  # type: ignore[arg-type]
    assert late == invalid('Runs in status "expired" do not accept tool outputs.')
    assert refused(lambda: runs.cancel(run.id, thread_id=thread_id)) == invalid(
        "Cannot cancel run with status 'expired'."
    )
    assert runs.retrieve(run.id, thread_id=thread_id).status == "expired", "it can never be resumed"

    client.beta.threads.messages.create(thread_id, role="user", content="still there?")
    again = runs.create_and_poll(thread_id=thread_id, assistant_id=run.assistant_id, tool_choice="none")
    assert again.status == "completed"
    texts = [m.content[0].text.value for m in client.beta.threads.messages.list(thread_id, order="asc")]  # type: ignore[union-attr]
    assert texts == ["weather please", "still there?", "You said: still there?"]


def test_cancel_a_run_waiting_for_outputs(client: OpenAI) -> None:
    thread_id, run = waiting_run(client)
    runs = client.beta.threads.runs
    cancelling = runs.cancel(run.id, thread_id=thread_id)
    assert cancelling.status == "cancelling" and cancelling.cancelled_at is None
    assert cancelling.required_action is None and cancelling.usage is None
    cancelled = runs.retrieve(run.id, thread_id=thread_id)
    assert cancelled.status == "cancelled" and cancelled.cancelled_at is not None
    assert cancelled.created_at <= cancelled.cancelled_at and cancelled.expires_at is None
    assert (cancelled.completed_at, cancelled.failed_at) == (None, None)
    assert cancelled.usage is not None and cancelled.usage.prompt_tokens > 0 and cancelled.usage.completion_tokens > 0
    assert cancelled.usage.model_dump() == steps_usage_sum(client, thread_id, run.id), "tokens before the cancel stay"
    (step,) = runs.steps.list(run.id, thread_id=thread_id)
    assert step.status == "cancelled" and step.cancelled_at == cancelled.cancelled_at
    assert step.step_details.tool_calls[0].function.output is None  # type: ignore[union-attr]

    assert refused(lambda: runs.cancel(run.id, thread_id=thread_id)) == invalid(
        "Cannot cancel run with status 'cancelled'."
    )
    client.beta.threads.messages.create(thread_id, role="user", content="never mind")


def test_cancel_of_a_finished_run_is_refused(client: OpenAI) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o")
    run = client.beta.threads.create_and_run_poll(
        assistant_id=assistant.id, thread={"messages": [{"role": "user", "content": "hi"}]}
    )
    assert run.status == "completed"
    body = refused(lambda: client.beta.threads.runs.cancel(run.id, thread_id=run.thread_id))
    assert body == invalid("Cannot cancel run with status 'completed'.")
    assert client.beta.threads.runs.retrieve(run.id, thread_id=run.thread_id).status == "completed"


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with extra_server(tmp_path_factory.mktemp("polls-3"), EMULATOR_RUN_PROGRESSION="polls:3") as running:
        yield running


@pytest.fixture
def slow(slow_server: RunningServer) -> tuple[OpenAI, httpx.Client]:
    key = f"sk-test-{uuid.uuid4().hex}"
    sdk = OpenAI(base_url=slow_server.base_url, api_key=key, max_retries=0)
    clock = httpx.Client(base_url=f"{slow_server.root_url}/_emulator", headers={"Authorization": f"Bearer {key}"})
    return sdk, clock


def queued_run(sdk: OpenAI) -> Any:
    assistant = sdk.beta.assistants.create(model="gpt-4o", instructions="Be brief.")
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "slowly"}])
    run = sdk.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "queued"
    return run


def test_polls_policy_keeps_a_run_queued_for_n_minus_one_reads(slow: tuple[OpenAI, httpx.Client]) -> None:
    sdk, _ = slow
    run = queued_run(sdk)
    runs = sdk.beta.threads.runs
    for _ in range(2):
        seen = runs.retrieve(run.id, thread_id=run.thread_id)
        assert (seen.status, seen.started_at, seen.usage) == ("queued", None, None)
    done = runs.retrieve(run.id, thread_id=run.thread_id)
    assert done.status == "completed" and done.usage is not None and done.started_at is not None
    polled = runs.create_and_poll(thread_id=run.thread_id, assistant_id=run.assistant_id, poll_interval_ms=10)
    assert polled.status == "completed", "the SDK poller gets there"


def test_polls_policy_leaves_runs_to_reads(slow: tuple[OpenAI, httpx.Client], slow_server: RunningServer) -> None:
    """No runner moves a run under `polls:N`: left unread past a few runner sweeps, it is still queued and not
    due; the reads then take it through its N polls as ever."""
    sdk, _ = slow
    run = queued_run(sdk)
    time.sleep(2.5)
    assert query(slow_server, "SELECT status, observations, due_at FROM runs WHERE id = :id", id=run.id) == [
        ("queued", 0, None)
    ]
    statuses = [sdk.beta.threads.runs.retrieve(run.id, thread_id=run.thread_id).status for _ in range(3)]
    assert statuses == ["queued", "queued", "completed"]


def test_a_queued_run_holds_the_thread(slow: tuple[OpenAI, httpx.Client]) -> None:
    sdk, _ = slow
    run = queued_run(sdk)
    body = refused(lambda: sdk.beta.threads.runs.create(thread_id=run.thread_id, assistant_id=run.assistant_id))
    assert body == invalid(f"Thread {run.thread_id} already has an active run {run.id}.")
    body = refused(lambda: sdk.beta.threads.messages.create(run.thread_id, role="user", content="x"))
    assert body == invalid(f"Can't add messages to {run.thread_id} while a run {run.id} is active.")


def test_a_queued_run_expires_and_frees_its_thread(slow: tuple[OpenAI, httpx.Client]) -> None:
    sdk, clock = slow
    runs = sdk.beta.threads.runs
    observed, unobserved = queued_run(sdk), queued_run(sdk)
    advance(clock, 601)
    expired = runs.retrieve(observed.id, thread_id=observed.thread_id)
    assert expired.status == "expired" and expired.started_at is None and expired.expires_at is None
    assert expired.usage is not None and expired.usage.total_tokens == 0
    assert list(runs.steps.list(observed.id, thread_id=observed.thread_id)) == []

    successor = runs.create(thread_id=unobserved.thread_id, assistant_id=unobserved.assistant_id)
    assert successor.status == "queued", "an unobserved expired run does not hold its thread"
    assert runs.retrieve(unobserved.id, thread_id=unobserved.thread_id).status == "expired"



def test_a_message_to_a_thread_whose_run_expired_unobserved_is_taken(slow: tuple[OpenAI, httpx.Client]) -> None:
    sdk, clock = slow
    run = queued_run(sdk)
    advance(clock, 601)
    message = sdk.beta.threads.messages.create(run.thread_id, role="user", content="after the expiry")
    assert message.content[0].text.value == "after the expiry"  # type: ignore[union-attr]
    assert sdk.beta.threads.runs.retrieve(run.id, thread_id=run.thread_id).status == "expired"

def test_cancel_a_queued_run(slow: tuple[OpenAI, httpx.Client]) -> None:
    sdk, _ = slow
    run = queued_run(sdk)
    runs = sdk.beta.threads.runs
    assert runs.cancel(run.id, thread_id=run.thread_id).status == "cancelling"
    final = runs.poll(run.id, thread_id=run.thread_id, poll_interval_ms=10)
    assert final.status == "cancelled" and final.cancelled_at is not None and final.started_at is None
    assert final.usage is not None and final.usage.total_tokens == 0
    assert list(runs.steps.list(run.id, thread_id=run.thread_id)) == []
    assert [m.role for m in sdk.beta.threads.messages.list(run.thread_id)] == ["user"]
