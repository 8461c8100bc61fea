"""Scripted model turns (`/_emulator/script`): what the model says, matching, FIFO, consumption, isolation.

Everything goes through the official SDK and raw HTTP against the real server.
"""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from openai import OpenAI
from openai.types.beta.threads import Run

from emulator import tokens
from tests.control_helpers import TIME, WEATHER, beta_headers, consumed, deltas, script, sse_events
from tests.oracle import conforms
from tests.server import RunningServer


def _assistant(client: OpenAI, **kwargs: object) -> str:
    return client.beta.assistants.create(model="gpt-5.5", **kwargs).id  # type: ignore[arg-type]


def _ask(client: OpenAI, assistant_id: str, text: str, **run_kwargs: object) -> tuple[str, Run]:
    thread = client.beta.threads.create(messages=[{"role": "user", "content": text}])
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id,
        assistant_id=assistant_id,
        **run_kwargs,  # type: ignore[arg-type]
    )
    return thread.id, run


def _answer(client: OpenAI, thread_id: str) -> str:
    message = client.beta.threads.messages.list(thread_id, limit=1).data[0]
    assert message.role == "assistant"
    return message.content[0].text.value  # type: ignore[union-attr]


def test_text_turn_is_the_answer_and_moves_from_pending_to_consumed(client: OpenAI, control: httpx.Client) -> None:
    assistant_id = _assistant(client)
    added = script(control, {"type": "text", "text": "Scripted hello."})
    assert len(added) == 1
    turn = added[0]
    assert turn["id"].startswith("turn_") and turn["object"] == "emulator.scripted_turn"
    assert turn["match"] == {} and turn["turn"] == {"type": "text", "text": "Scripted hello."}
    assert (turn["consumed_at"], turn["run_id"], turn["request"]) == (None, None, None)
    assert control.get("/script").json()["data"] == added

    thread_id, run = _ask(client, assistant_id, "Say something")
    assert run.status == "completed"
    assert _answer(client, thread_id) == "Scripted hello."
    assert control.get("/script").json() == {"object": "list", "data": []}
    [played] = consumed(control)
    assert played["id"] == turn["id"] and played["run_id"] == run.id
    assert isinstance(played["consumed_at"], int) and played["consumed_at"] >= turn["created_at"]
    assert played["request"]["messages"] == [{"role": "user", "text": "Say something"}]
    assert played["request"]["prompt_tokens"] == run.usage.prompt_tokens  # type: ignore[union-attr]
    assert run.usage.completion_tokens == tokens.count("Scripted hello.", "o200k_base")  # type: ignore[union-attr]

    _thread_id, again = _ask(client, assistant_id, "Once more")
    assert _answer(client, _thread_id) == "You said: Once more", "a consumed turn never plays twice"
    assert again.status == "completed"


def test_chunk_size_sets_the_size_of_streamed_deltas(client: OpenAI, http: httpx.Client, control: httpx.Client) -> None:
    assistant_id = _assistant(client)
    script(control, {"type": "text", "text": "abcdefghij", "chunk_size": 4}, {"type": "text", "text": "one two three"})
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "go"}])
    response = http.post(f"/threads/{thread.id}/runs", json={"assistant_id": assistant_id, "stream": True})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    assert deltas(events) == ["abcd", "efgh", "ij"]
    assert events[-1] == ("done", "[DONE]") and events[-2][0] == "thread.run.completed"
    completed = next(data for name, data in events if name == "thread.message.completed")
    assert completed["content"][0]["text"]["value"] == "abcdefghij"

    # Without chunk_size: one word (with its leading space) per delta, through the SDK's stream helper.
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "go"}])
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant_id) as stream:
        pieces = [event.data.delta.content[0].text.value for event in stream if event.event == "thread.message.delta"]  # type: ignore[union-attr]
        final = stream.get_final_messages()
    assert pieces == ["one", " two", " three"]
    assert final[0].content[0].text.value == "one two three"  # type: ignore[union-attr]


def test_function_calls_carry_the_exact_arguments(client: OpenAI, http: httpx.Client, control: httpx.Client) -> None:
    assistant_id = _assistant(client, tools=[WEATHER])
    script(
        control,
        {
            "type": "function_calls",
            "calls": [
                {"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}},
                {"name": "get_weather", "arguments": '{"city":  "Rome" }'},
            ],
        },
    )
    thread_id, run = _ask(client, assistant_id, "no function named here")
    assert run.status == "requires_action"
    calls = run.required_action.submit_tool_outputs.tool_calls  # type: ignore[union-attr]
    assert [(call.function.name, call.function.arguments) for call in calls] == [
        ("get_weather", '{"city":"Paris","unit":"c"}'),
        ("get_weather", '{"city":  "Rome" }'),
    ], "dict arguments are compact JSON; string arguments are kept byte for byte"
    assert all(call.id.startswith("call_") and call.type == "function" for call in calls)

    raw = http.get(f"/threads/{thread_id}/runs/{run.id}").json()
    conforms(raw, Run, "RunObject")
    steps = http.get(f"/threads/{thread_id}/runs/{run.id}/steps").json()["data"]
    assert [step["type"] for step in steps] == ["tool_calls"]
    assert [call["function"]["arguments"] for call in steps[0]["step_details"]["tool_calls"]] == [
        '{"city":"Paris","unit":"c"}',
        '{"city":  "Rome" }',
    ]


def test_a_script_spans_a_whole_conversation(client: OpenAI, control: httpx.Client) -> None:
    assistant_id = _assistant(client, tools=[WEATHER, TIME])
    script(
        control,
        {"type": "function_calls", "calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}]},
        {"type": "text", "text": "Oslo is cold."},
        {"type": "function_calls", "calls": [{"name": "get_time", "arguments": {"zone": "CET"}}]},
        {"type": "text", "text": "It is noon."},
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Weather?"}])
    first = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant_id)
    assert first.status == "requires_action"
    [call] = first.required_action.submit_tool_outputs.tool_calls  # type: ignore[union-attr]
    assert (call.function.name, call.function.arguments) == ("get_weather", '{"city":"Oslo"}')
    first = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=first.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": call.id, "output": "-5C"}]
    )
    assert first.status == "completed"
    assert _answer(client, thread.id) == "Oslo is cold."

    client.beta.threads.messages.create(thread.id, role="user", content="And the time?")
    second = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant_id)
    assert second.status == "requires_action"
    [call2] = second.required_action.submit_tool_outputs.tool_calls  # type: ignore[union-attr]
    assert (call2.function.name, call2.function.arguments) == ("get_time", '{"zone":"CET"}')
    second = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=second.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": call2.id, "output": "12:00"}]
    )
    assert second.status == "completed"
    assert _answer(client, thread.id) == "It is noon."

    played = consumed(control)
    assert [turn["run_id"] for turn in played] == [first.id, first.id, second.id, second.id]
    assert played[0]["request"]["tool_results"] == []
    assert played[1]["request"]["tool_results"] == [
        {"call_id": call.id, "name": "get_weather", "arguments": '{"city":"Oslo"}', "output": "-5C"}
    ]
    assert [m["text"] for m in played[2]["request"]["messages"]] == ["Weather?", "Oslo is cold.", "And the time?"]
    assert played[3]["request"]["tool_results"][0]["output"] == "12:00"
    assert control.get("/script").json()["data"] == []


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("server_error", "Something went wrong upstream."),
        ("rate_limit_exceeded", "Slow down (scripted)."),
        ("invalid_prompt", "Your prompt was flagged."),
    ],
)
def test_a_failure_turn_fails_the_run_with_that_error(
    client: OpenAI, http: httpx.Client, control: httpx.Client, code: str, message: str
) -> None:
    assistant_id = _assistant(client)
    script(control, {"type": "failure", "code": code, "message": message})
    thread_id, run = _ask(client, assistant_id, "hi")
    assert run.status == "failed"
    assert (run.last_error.code, run.last_error.message) == (code, message)  # type: ignore[union-attr]
    assert run.failed_at is not None and run.completed_at is None
    raw = http.get(f"/threads/{thread_id}/runs/{run.id}").json()
    conforms(raw, Run, "RunObject")
    assert raw["last_error"] == {"code": code, "message": message}
    assert [m.role for m in client.beta.threads.messages.list(thread_id)] == ["user"], "no assistant message"
    # The thread is free again: a new run plays the default model.
    run = client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id)
    assert run.status == "completed" and _answer(client, thread_id) == "You said: hi"


def test_a_failure_turn_ends_a_stream_with_run_failed(
    client: OpenAI, http: httpx.Client, control: httpx.Client
) -> None:
    assistant_id = _assistant(client)
    script(control, {"type": "failure", "message": "boom"})
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    events = sse_events(
        http.post(f"/threads/{thread.id}/runs", json={"assistant_id": assistant_id, "stream": True}).text
    )
    names = [name for name, _ in events]
    assert names[-2:] == ["thread.run.failed", "done"]
    assert events[-2][1]["last_error"] == {"code": "server_error", "message": "boom"}


def test_incomplete_turn_with_partial_text_at_max_completion_tokens(client: OpenAI, control: httpx.Client) -> None:
    assistant_id = _assistant(client)
    script(control, {"type": "incomplete", "text": "The answer is cut"})
    thread_id, run = _ask(client, assistant_id, "Tell me a story", max_completion_tokens=256)
    assert run.status == "incomplete"
    assert run.incomplete_details.reason == "max_completion_tokens"  # type: ignore[union-attr]
    message = client.beta.threads.messages.list(thread_id, limit=1).data[0]
    assert message.role == "assistant" and message.status == "incomplete"
    assert message.incomplete_details.reason == "max_tokens"  # type: ignore[union-attr]
    assert message.content[0].text.value == "The answer is cut"  # type: ignore[union-attr]
    assert run.usage.completion_tokens == tokens.count("The answer is cut", "o200k_base")  # type: ignore[union-attr]


def test_incomplete_turn_at_max_prompt_tokens(client: OpenAI, control: httpx.Client) -> None:
    assistant_id = _assistant(client)
    script(control, {"type": "incomplete", "reason": "max_prompt_tokens"})
    thread_id, run = _ask(client, assistant_id, "hi", max_prompt_tokens=256)
    assert run.status == "incomplete"
    assert run.incomplete_details.reason == "max_prompt_tokens"  # type: ignore[union-attr]
    assert run.usage.completion_tokens == 0  # type: ignore[union-attr]
    assert [m.role for m in client.beta.threads.messages.list(thread_id)] == ["user"]


def test_a_delay_keeps_the_run_in_progress_until_the_clock_passes_it(client: OpenAI, control: httpx.Client) -> None:
    assistant_id = _assistant(client)
    script(control, {"type": "delay", "seconds": 30}, {"type": "text", "text": "Worth the wait."})
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant_id)
    for _ in range(3):
        polled = client.beta.threads.runs.retrieve(run_id=run.id, thread_id=thread.id)
        assert polled.status == "in_progress"
    assert [m.role for m in client.beta.threads.messages.list(thread.id)] == ["assistant", "user"]
    assert client.beta.threads.messages.list(thread.id).data[0].status == "in_progress"

    assert control.post("/clock/advance", json={"seconds": 31}).status_code == 200
    polled = client.beta.threads.runs.retrieve(run_id=run.id, thread_id=thread.id)
    assert polled.status == "completed"
    assert _answer(client, thread.id) == "Worth the wait."
    assert [(turn["turn"]["type"], turn["run_id"]) for turn in consumed(control)] == [
        ("delay", run.id),
        ("text", run.id),
    ]


def test_a_delay_alone_delays_the_default_answer(client: OpenAI, control: httpx.Client) -> None:
    assistant_id = _assistant(client)
    script(control, {"type": "delay", "seconds": 10})
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant_id)
    assert client.beta.threads.runs.retrieve(run_id=run.id, thread_id=thread.id).status == "in_progress"
    control.post("/clock/advance", json={"seconds": 11})
    assert client.beta.threads.runs.retrieve(run_id=run.id, thread_id=thread.id).status == "completed"
    assert _answer(client, thread.id) == "You said: hi"


def test_turns_match_on_assistant_thread_metadata_and_message(client: OpenAI, control: httpx.Client) -> None:
    plain, special = _assistant(client), _assistant(client)
    pinned = client.beta.threads.create(messages=[{"role": "user", "content": "pinned thread"}])
    script(
        control,
        {"type": "text", "text": "for the special assistant", "match": {"assistant_id": special}},
        {"type": "text", "text": "for the pinned thread", "match": {"thread_id": pinned.id}},
        {"type": "text", "text": "for user u1", "match": {"metadata": {"user_id": "u1"}}},
        {"type": "text", "text": "about weather", "match": {"message_regex": r"weather in (Paris|Rome)\b"}},
        {"type": "text", "text": "both", "match": {"assistant_id": special, "message_regex": "^both$"}},
    )
    # Nothing matches: the deterministic default answers, and no turn is consumed.
    thread_id, _ = _ask(client, plain, "weather in Berlin", metadata={"user_id": "u2"})
    assert _answer(client, thread_id) == "You said: weather in Berlin"
    assert consumed(control) == []

    thread_id, _ = _ask(client, plain, "What's the weather in Rome today?")
    assert _answer(client, thread_id) == "about weather"
    thread_id, _ = _ask(client, plain, "hi", metadata={"user_id": "u1", "team": "x"})
    assert _answer(client, thread_id) == "for user u1", "metadata matches as a subset"
    client.beta.threads.runs.create_and_poll(thread_id=pinned.id, assistant_id=plain)
    assert _answer(client, pinned.id) == "for the pinned thread"
    thread_id, _ = _ask(client, special, "both")
    assert _answer(client, thread_id) == "for the special assistant", "the first fitting turn wins"
    thread_id, _ = _ask(client, plain, "both")
    assert _answer(client, thread_id) == "You said: both", "every condition of a match must hold"
    thread_id, _ = _ask(client, special, "both")
    assert _answer(client, thread_id) == "both"
    assert control.get("/script").json()["data"] == []


def test_first_match_wins_and_fifo_within_a_match(client: OpenAI, control: httpx.Client) -> None:
    assistant_id = _assistant(client)
    hello = {"message_regex": "hello"}
    script(
        control,
        {"type": "text", "text": "hello 1", "match": hello},
        {"type": "text", "text": "any 1"},
        {"type": "text", "text": "hello 2", "match": hello},
        {"type": "text", "text": "any 2"},
    )
    answers = []
    for text in ("hello there", "bye", "hello again", "hello", "last"):
        thread_id, _ = _ask(client, assistant_id, text)
        answers.append(_answer(client, thread_id))
    assert answers == ["hello 1", "any 1", "hello 2", "any 2", "You said: last"]


def test_list_and_clear_pending_turns(client: OpenAI, control: httpx.Client) -> None:
    assistant_id = _assistant(client)
    added = script(control, *({"type": "text", "text": f"t{i}"} for i in range(3)))
    assert [turn["turn"]["text"] for turn in control.get("/script").json()["data"]] == ["t0", "t1", "t2"]
    thread_id, _ = _ask(client, assistant_id, "hi")
    assert _answer(client, thread_id) == "t0"
    assert [turn["id"] for turn in control.get("/script").json()["data"]] == [added[1]["id"], added[2]["id"]]
    assert control.delete("/script").json() == {"deleted": 2}
    assert control.get("/script").json()["data"] == []
    assert [turn["id"] for turn in consumed(control)] == [added[0]["id"]], "clearing keeps the consumed record"
    thread_id, _ = _ask(client, assistant_id, "hi")
    assert _answer(client, thread_id) == "You said: hi"


def test_consumed_turn_shows_the_prompt_after_truncation(client: OpenAI, control: httpx.Client) -> None:
    assistant_id = _assistant(client, instructions="Be brief.", tools=[WEATHER])
    script(control, {"type": "text", "text": "ok"})
    thread = client.beta.threads.create(messages=[{"role": "user", "content": f"message {i}"} for i in range(5)])
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id,
        assistant_id=assistant_id,
        truncation_strategy={"type": "last_messages", "last_messages": 2},
        additional_instructions="Answer in French.",
    )
    assert run.status == "completed"
    [played] = consumed(control)
    request = played["request"]
    assert played["run_id"] == run.id
    assert request["messages"] == [{"role": "user", "text": "message 3"}, {"role": "user", "text": "message 4"}]
    assert request["dropped_messages"] == 3
    assert request["model"] == "gpt-5.5"
    assert "Be brief." in request["instructions"] and "Answer in French." in request["instructions"]
    assert [tool["function"]["name"] for tool in request["tools"]] == ["get_weather"]
    assert request["tools"][0]["function"]["parameters"] == WEATHER["function"]["parameters"]
    assert (request["tool_choice"], request["parallel_tool_calls"], request["tool_results"]) == ("auto", True, [])
    assert request["prompt_tokens"] == run.usage.prompt_tokens  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"turns": []}, "turns"),
        ({"turns": [{"type": "speech", "text": "x"}]}, "turns[0].type"),
        ({"turns": [{"type": "text"}]}, "turns[0].text"),
        ({"turns": [{"type": "failure", "code": "teapot"}]}, "turns[0].code"),
        ({"turns": [{"type": "text", "text": "x", "chunk_size": 0}]}, "turns[0].chunk_size"),
        ({"turns": [{"type": "function_calls", "calls": []}]}, "turns[0].calls"),
        ({"turns": [{"type": "text", "text": "x", "match": {"message_regex": "("}}]}, "turns[0].match.message_regex"),
        ({"turns": [{"type": "text", "text": "x", "match": {"colour": "red"}}]}, None),
    ],
)
def test_invalid_turns_are_400_in_the_openai_envelope(control: httpx.Client, body: dict, param: str | None) -> None:
    response = control.post("/script", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param, error
    if param is None:  # an unknown field is reported like the real API's unknown parameters
        assert error["message"] == "Unrecognized request argument supplied: turns[0].match.colour"
    assert control.get("/script").json()["data"] == []


def test_another_tenants_script_never_plays_for_you(
    client: OpenAI, control: httpx.Client, server: RunningServer
) -> None:
    other_key = f"sk-test-{uuid.uuid4().hex}"
    with httpx.Client(
        base_url=f"{server.root_url}/_emulator", headers={"Authorization": f"Bearer {other_key}"}
    ) as other:
        script(other, {"type": "text", "text": "for the other tenant only"})
        assistant_id = _assistant(client)
        thread_id, _ = _ask(client, assistant_id, "hi")
        assert _answer(client, thread_id) == "You said: hi"
        assert control.get("/script").json()["data"] == [] and consumed(control) == []
        assert [turn["turn"]["text"] for turn in other.get("/script").json()["data"]] == ["for the other tenant only"]
        assert other.delete("/script").json() == {"deleted": 1}


def test_control_plane_needs_a_key_but_no_beta_header(server: RunningServer, api_key: str) -> None:
    no_key = httpx.get(f"{server.root_url}/_emulator/script")
    assert no_key.status_code == 401
    assert no_key.json()["error"]["type"] == "invalid_request_error"
    # The beta header is neither required nor harmful.
    plain = httpx.get(f"{server.root_url}/_emulator/script", headers={"Authorization": f"Bearer {api_key}"})
    with_beta = httpx.get(f"{server.root_url}/_emulator/script", headers=beta_headers(api_key))
    assert plain.status_code == with_beta.status_code == 200
    assert plain.json() == {"object": "list", "data": []}
    assert json.loads(httpx.get(f"{server.root_url}/_emulator/health").text)["status"] == "ok"
