"""Streamed runs: the SDK's stream helpers end to end (runs.stream with an AssistantEventHandler and
until_done(), threads.create_and_run_stream, runs.submit_tool_outputs_stream continuing the same run), the exact
event order, the wire format over raw HTTP, the rules the official SDKs rely on (SPEC.md, checked on every raw
stream here), a client that disconnects, and a cancel that arrives while another request streams the run.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from openai import AssistantEventHandler, OpenAI
from openai.types.beta import AssistantStreamEvent
from openai.types.beta.threads import Message, Run
from openai.types.beta.threads.runs import RunStep, ToolCall

from tests.oracle import conforms
from tests.server import RunningServer, run_server

TERMINAL = ("completed", "incomplete", "failed", "cancelled", "expired")
STEP_ENDS = {f"thread.run.step.{end}" for end in ("completed", "failed", "cancelled", "expired")}
MESSAGE_ENDS = {"thread.message.completed", "thread.message.incomplete"}
RUN_OPENING = ["thread.run.created", "thread.run.queued", "thread.run.in_progress"]
STEP_OPENING = ["thread.run.step.created", "thread.run.step.in_progress"]
MESSAGE_OPENING = ["thread.message.created", "thread.message.in_progress"]
MESSAGE_CLOSING = ["thread.message.completed", "thread.run.step.completed", "thread.run.completed"]


def function(name: str) -> dict[str, Any]:
    parameters = {"type": "object", "properties": {"place": {"type": "string"}}, "required": ["place"]}
    return {"type": "function", "function": {"name": name, "parameters": parameters}}


TOOLS = [function("get_weather"), function("get_time")]


class Recorder(AssistantEventHandler):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[AssistantStreamEvent] = []
        self.text_deltas: list[Any] = []
        self.tool_calls_done: list[ToolCall] = []

    @property
    def names(self) -> list[str]:
        return [event.event for event in self.events]

    def on_event(self, event: AssistantStreamEvent) -> None:
        self.events.append(event)

    def on_text_delta(self, delta: Any, snapshot: Any) -> None:
        self.text_deltas.append(delta)

    def on_tool_call_done(self, tool_call: ToolCall) -> None:
        self.tool_calls_done.append(tool_call)


def setup(client: OpenAI, text: str, tools: list[dict[str, Any]] | None = None) -> tuple[str, str]:
    assistant = client.beta.assistants.create(model="gpt-4o", instructions="Be brief.", tools=tools or [])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": text}])
    return assistant.id, thread.id


def check_sdk_rules(events: list[tuple[str, Any]]) -> None:
    """SPEC.md, 'What the official SDKs rely on': what the Python and Node stream helpers assume."""
    assert events[-1] == ("done", "[DONE]"), "data: [DONE] ends the stream"
    body = events[:-1]
    assert all(name.startswith("thread.") and isinstance(data, dict) for name, data in body), "thread.* carry objects"
    ends = {f"thread.run.{status}" for status in (*TERMINAL, "requires_action")}
    assert body[-1][0] in ends, f"the run's terminal or requires_action event comes before done: {body[-1][0]}"
    assert not any(name in ends for name, _ in body[:-1]), "and only once, last"
    open_step = open_message = None
    opened: set[str] = set()
    first_deltas: set[tuple[str, int]] = set()
    for name, data in body:
        if name == "thread.run.step.created":
            assert open_step is None and data["id"] not in opened, "one step open at a time, created once"
            open_step = data["id"]
            opened.add(open_step)
        elif name in ("thread.run.step.in_progress", "thread.run.step.delta"):
            assert data["id"] == open_step, f"{name} for a step other than the open one"
        elif name in STEP_ENDS:
            # A step opened by an earlier stream (the tool calls before submit_tool_outputs) may end here.
            assert data["id"] == open_step or (open_step is None and data["id"] not in opened)
            open_step = None
        elif name == "thread.message.created":
            assert open_message is None and data["id"] not in opened, "one message open at a time, created once"
            open_message = data["id"]
            opened.add(open_message)
        elif name in ("thread.message.in_progress", "thread.message.delta"):
            assert data["id"] == open_message, f"{name} for a message other than the open one"
        elif name in MESSAGE_ENDS:
            assert data["id"] == open_message
            open_message = None
        if name in ("thread.run.step.created", "thread.run.step.in_progress") and data["type"] == "tool_calls":
            assert data["step_details"]["tool_calls"] == [], "calls come in deltas only (the SDKs add them up)"
        if name == "thread.run.step.delta":
            for call in data["delta"]["step_details"]["tool_calls"]:
                key = (data["id"], call["index"])
                if key not in first_deltas:
                    first_deltas.add(key)
                    assert call["id"].startswith("call_") and call["type"] == "function" and call["function"]["name"]
                else:  # repeated, they would be appended to the first ones (`type` is replaced, not appended)
                    assert "id" not in call and "name" not in call.get("function", {})
    assert open_message is None, "no message is left open"
    if body[-1][0] != "thread.run.requires_action":
        assert open_step is None, "no step is left open by a finished run"


def raw_stream(http: httpx.Client, path: str, body: dict[str, Any]) -> tuple[httpx.Response, bytes]:
    with http.stream("POST", path, json=body) as response:
        raw = response.read()
    return response, raw


EVENT_BLOCK = re.compile(r"event: ([a-z_.]+)\ndata: ([^\n]+)")


def parse_wire(raw: bytes) -> list[tuple[str, Any]]:
    """Each event exactly `event: <name>\\ndata: <one line>` followed by a blank line."""
    assert raw.endswith(b"event: done\ndata: [DONE]\n\n")
    blocks = raw.decode().split("\n\n")
    assert blocks[-1] == ""
    events = []
    for block in blocks[:-1]:
        match = EVENT_BLOCK.fullmatch(block)
        assert match, repr(block)
        name, data = match.groups()
        events.append((name, data if name == "done" else json.loads(data)))
    return events


def test_a_text_run_streams_every_event_in_order(client: OpenAI) -> None:
    assistant_id, thread_id = setup(client, "Stream this answer please")
    recorder = Recorder()
    with client.beta.threads.runs.stream(thread_id=thread_id, assistant_id=assistant_id, event_handler=recorder) as s:
        s.until_done()
    answer = "You said: Stream this answer please"
    deltas = recorder.names.count("thread.message.delta")
    assert deltas >= 2
    assert recorder.names == [
        *RUN_OPENING, *STEP_OPENING, *MESSAGE_OPENING, *["thread.message.delta"] * deltas, *MESSAGE_CLOSING
    ]  # fmt: skip
    assert "".join(delta.value for delta in recorder.text_deltas) == answer, "the deltas concatenate to the text"
    assert recorder.text_deltas[0].annotations == [] and all(d.annotations is None for d in recorder.text_deltas[1:])

    run = recorder.get_final_run()
    assert run.status == "completed" and run.thread_id == thread_id and run.usage is not None
    (message,) = recorder.get_final_messages()
    assert message.status == "completed" and message.content[0].text.value == answer  # type: ignore[union-attr]
    stored = client.beta.threads.messages.list(thread_id).data[0]
    assert stored.id == message.id and stored.content == message.content
    created, completed = recorder.events[0].data, recorder.events[-1].data
    assert isinstance(created, Run) and created.status == "queued" and created.expires_at == created.created_at + 600
    assert isinstance(completed, Run) and completed.id == created.id and completed.expires_at is None
    (step,) = client.beta.threads.runs.steps.list(run.id, thread_id=thread_id)
    assert step.usage is not None and step.usage.model_dump() == run.usage.model_dump()


def test_line_separators_inside_a_streamed_text_survive(client: OpenAI) -> None:
    text = "one\u2028two\u2029three\x85four"
    assistant_id, thread_id = setup(client, text)
    recorder = Recorder()
    with client.beta.threads.runs.stream(thread_id=thread_id, assistant_id=assistant_id, event_handler=recorder) as s:
        s.until_done()
    assert "".join(delta.value for delta in recorder.text_deltas) == f"You said: {text}"
    assert recorder.get_final_run().status == "completed"


def test_a_tool_run_streams_then_submit_tool_outputs_stream_continues_it(client: OpenAI) -> None:
    assistant_id, thread_id = setup(client, "what do get_weather and get_time say?", tools=TOOLS)
    first = Recorder()
    with client.beta.threads.runs.stream(thread_id=thread_id, assistant_id=assistant_id, event_handler=first) as s:
        s.until_done()
    assert first.names == [*RUN_OPENING, *STEP_OPENING, "thread.run.step.delta", "thread.run.step.delta",
                           "thread.run.requires_action"]  # fmt: skip
    run = first.get_final_run()
    assert run.status == "requires_action"
    required = run.required_action.submit_tool_outputs.tool_calls  # type: ignore[union-attr]
    assert [(c.id, c.function.name, c.function.arguments) for c in first.tool_calls_done] == [
        (c.id, c.function.name, c.function.arguments) for c in required
    ], "the accumulated deltas are the calls (arguments not doubled)"
    assert [c.function.name for c in required] == ["get_weather", "get_time"]

    second = Recorder()
    outputs = [{"tool_call_id": required[0].id, "output": "sunny"}, {"tool_call_id": required[1].id, "output": "noon"}]
    with client.beta.threads.runs.submit_tool_outputs_stream(
        thread_id=thread_id, run_id=run.id, tool_outputs=outputs, event_handler=second
    ) as s:
        s.until_done()
    deltas = second.names.count("thread.message.delta")
    assert second.names == [
        "thread.run.queued", "thread.run.in_progress", "thread.run.step.completed", *STEP_OPENING,
        *MESSAGE_OPENING, *["thread.message.delta"] * deltas, *MESSAGE_CLOSING,
    ]  # fmt: skip
    final = second.get_final_run()
    assert final.id == run.id and final.status == "completed"
    tool_step = second.events[2].data
    assert isinstance(tool_step, RunStep) and tool_step.type == "tool_calls" and tool_step.status == "completed"
    answer = "Based on the tool results: get_weather returned sunny; get_time returned noon."
    assert "".join(delta.value for delta in second.text_deltas) == answer
    assert client.beta.threads.messages.list(thread_id).data[0].content[0].text.value == answer  # type: ignore[union-attr]
    steps = list(client.beta.threads.runs.steps.list(run.id, thread_id=thread_id))
    assert final.usage is not None and final.usage.total_tokens == sum(s.usage.total_tokens for s in steps)  # type: ignore[union-attr]


def test_create_and_run_stream_opens_with_the_thread(client: OpenAI) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o")
    recorder = Recorder()
    with client.beta.threads.create_and_run_stream(
        assistant_id=assistant.id,
        thread={"messages": [{"role": "user", "content": "brand new"}], "metadata": {"k": "v"}},
        event_handler=recorder,
    ) as stream:
        stream.until_done()
    deltas = recorder.names.count("thread.message.delta")
    assert recorder.names == [
        "thread.created", *RUN_OPENING, *STEP_OPENING, *MESSAGE_OPENING, *["thread.message.delta"] * deltas,
        *MESSAGE_CLOSING,
    ]  # fmt: skip
    thread = recorder.events[0].data
    run = recorder.get_final_run()
    assert thread.metadata == {"k": "v"} and run.thread_id == thread.id and run.status == "completed"  # type: ignore[union-attr]
    assert "".join(delta.value for delta in recorder.text_deltas) == "You said: brand new"


def test_the_wire_format_and_the_sdk_rules(client: OpenAI, http: httpx.Client) -> None:
    assistant_id, thread_id = setup(client, "Plain words for the wire")
    response, raw = raw_stream(http, f"/threads/{thread_id}/runs", {"assistant_id": assistant_id, "stream": True})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = parse_wire(raw)
    check_sdk_rules(events)
    schemas = {"thread.run": (Run, "RunObject"), "thread.run.step": (RunStep, "RunStepObject"),
               "thread.message": (Message, "MessageObject")}  # fmt: skip
    for _, data in events[:-1]:
        if data["object"] in schemas:
            conforms(data, *schemas[data["object"]])
    deltas = [data for name, data in events if name == "thread.message.delta"]
    assert deltas[0]["delta"]["content"][0]["text"] == {"value": "You", "annotations": []}
    assert "".join(d["delta"]["content"][0]["text"]["value"] for d in deltas) == "You said: Plain words for the wire"

    tool_assistant, tool_thread = setup(client, "get_weather and get_time", tools=TOOLS)
    response, raw = raw_stream(http, f"/threads/{tool_thread}/runs", {"assistant_id": tool_assistant, "stream": True})
    events = parse_wire(raw)
    check_sdk_rules(events)
    tool_deltas = [data for name, data in events if name == "thread.run.step.delta"]
    assert [d["delta"]["step_details"]["tool_calls"][0]["index"] for d in tool_deltas] == [0, 1]
    calls = events[-2][1]["required_action"]["submit_tool_outputs"]["tool_calls"]
    outputs = [{"tool_call_id": call["id"], "output": "ok"} for call in calls]
    path = f"/threads/{tool_thread}/runs/{events[-2][1]['id']}/submit_tool_outputs"
    response, raw = raw_stream(http, path, {"tool_outputs": outputs, "stream": True})
    assert response.headers["content-type"].startswith("text/event-stream")
    events = parse_wire(raw)
    check_sdk_rules(events)
    assert events[-2][0] == "thread.run.completed"


def poll_until_terminal(client: OpenAI, thread_id: str, run_id: str, seconds: float = 15) -> Run:
    deadline = time.monotonic() + seconds
    while True:
        run = client.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
        if run.status in TERMINAL or time.monotonic() > deadline:
            return run
        time.sleep(0.05)


def test_a_client_that_disconnects_leaves_a_resumable_run(
    client: OpenAI, http: httpx.Client, control: httpx.Client
) -> None:
    assert control.post("/latency", json={"ttft_ms": 400}).status_code == 200
    assistant_id, thread_id = setup(client, "I will hang up early")
    names: list[str] = []
    with http.stream("POST", f"/threads/{thread_id}/runs", json={"assistant_id": assistant_id, "stream": True}) as r:
        lines = r.iter_lines()
        while len(names) < 2:
            line = next(lines)
            if line.startswith("event: "):
                names.append(line.removeprefix("event: "))
                run_id = json.loads(next(lines).removeprefix("data: "))["id"]
    assert names == ["thread.run.created", "thread.run.queued"]

    run = poll_until_terminal(client, thread_id, run_id)
    assert run.status == "completed", "never stuck: a poll finishes what the stream started"
    (message,) = [m for m in client.beta.threads.messages.list(thread_id) if m.role == "assistant"]
    assert message.status == "completed" and message.content[0].text.value == "You said: I will hang up early"  # type: ignore[union-attr]
    (step,) = client.beta.threads.runs.steps.list(run_id, thread_id=thread_id)
    assert step.status == "completed" and step.usage is not None and run.usage is not None
    assert step.usage.model_dump() == run.usage.model_dump()
    assert step.step_details.message_creation.message_id == message.id  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def replica(server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A second server process over the same database, as a second replica would be."""
    with run_server(tmp_path_factory.mktemp("replica"), server.database_url) as running:
        yield running


@pytest.mark.parametrize("canceller", ["same process", "another process"])
def test_a_cancel_ends_a_stream_that_is_waiting_for_the_model(
    client: OpenAI, http: httpx.Client, control: httpx.Client, request: pytest.FixtureRequest, canceller: str
) -> None:
    if canceller == "another process":
        other: RunningServer = request.getfixturevalue("replica")
        canceller_client = client.with_options(base_url=other.base_url)
    else:
        canceller_client = client
    assert control.post("/latency", json={"ttft_ms": 3000}).status_code == 200
    assistant_id, thread_id = setup(client, "Take your time")
    events: list[tuple[str, Any]] = []
    opened = threading.Event()

    def read() -> None:
        with http.stream(
            "POST", f"/threads/{thread_id}/runs", json={"assistant_id": assistant_id, "stream": True}
        ) as r:
            name = ""
            for line in r.iter_lines():
                if line.startswith("event: "):
                    name = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    data = line.removeprefix("data: ")
                    events.append((name, data if name == "done" else json.loads(data)))
                    if name == "thread.message.in_progress":
                        opened.set()

    reader = threading.Thread(target=read)
    started = time.monotonic()
    reader.start()
    assert opened.wait(10), events
    run_id = events[0][1]["id"]
    cancelling = canceller_client.beta.threads.runs.cancel(run_id, thread_id=thread_id)
    assert cancelling.status == "cancelling"
    reader.join(10)
    assert not reader.is_alive() and time.monotonic() - started < 2.9, "the stream ended before the model answered"

    check_sdk_rules(events)
    assert [name for name, _ in events][-5:] == [
        "thread.run.cancelling", "thread.message.incomplete", "thread.run.step.cancelled", "thread.run.cancelled",
        "done",
    ]  # fmt: skip
    assert events[-3][1]["cancelled_at"] is not None and events[-2][1]["cancelled_at"] is not None
    run = client.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
    assert run.status == "cancelled" and run.usage is not None
    (message,) = [m for m in client.beta.threads.messages.list(thread_id) if m.role == "assistant"]
    assert message.status == "incomplete" and message.incomplete_details.reason == "run_cancelled"  # type: ignore[union-attr]
    assert message.content == []


def test_a_failed_model_call_ends_the_stream_with_run_failed(client: OpenAI, control: httpx.Client) -> None:
    scripted = control.post("/script", json={"turns": [{"type": "failure", "message": "The model broke."}]})
    assert scripted.status_code == 200, scripted.text
    assistant_id, thread_id = setup(client, "this will fail")
    recorder = Recorder()
    with client.beta.threads.runs.stream(thread_id=thread_id, assistant_id=assistant_id, event_handler=recorder) as s:
        s.until_done()
    assert recorder.names == [*RUN_OPENING, "thread.run.failed"]
    run = recorder.get_final_run()
    assert run.status == "failed" and run.failed_at is not None and run.expires_at is None
    assert run.last_error is not None and (run.last_error.code, run.last_error.message) == (
        "server_error",
        "The model broke.",
    )
    assert client.beta.threads.runs.retrieve(run.id, thread_id=thread_id).status == "failed"
    assert [m.role for m in client.beta.threads.messages.list(thread_id)] == ["user"]
    client.beta.threads.messages.create(thread_id, role="user", content="the thread is free again")


def test_polls_during_a_stream_never_move_the_run_twice(
    client: OpenAI, http: httpx.Client, control: httpx.Client
) -> None:
    assert control.post("/latency", json={"ttft_ms": 800}).status_code == 200
    assistant_id, thread_id = setup(client, "one answer only")
    events: list[tuple[str, Any]] = []

    def read() -> None:
        _, raw = raw_stream(http, f"/threads/{thread_id}/runs", {"assistant_id": assistant_id, "stream": True})
        events.extend(parse_wire(raw))

    reader = threading.Thread(target=read)
    reader.start()
    seen: list[str] = []
    while reader.is_alive():
        runs = client.beta.threads.runs.list(thread_id).data
        if runs:
            seen.append(client.beta.threads.runs.retrieve(runs[0].id, thread_id=thread_id).status)
        time.sleep(0.05)
    reader.join()
    check_sdk_rules(events)
    assert events[-2][0] == "thread.run.completed"
    assert set(seen[:-1]) <= {"queued", "in_progress"} and len(seen) > 3, seen
    assistant_messages = [m for m in client.beta.threads.messages.list(thread_id) if m.role == "assistant"]
    assert len(assistant_messages) == 1 and assistant_messages[0].content[0].text.value == "You said: one answer only"  # type: ignore[union-attr]
    assert len(list(client.beta.threads.runs.steps.list(events[0][1]["id"], thread_id=thread_id))) == 1


def test_a_streamed_answer_cut_by_max_completion_tokens_ends_incomplete(client: OpenAI, http: httpx.Client) -> None:
    assistant_id, thread_id = setup(client, "echo these words back to me please " * 50)
    body = {"assistant_id": assistant_id, "stream": True, "max_completion_tokens": 256}
    _, raw = raw_stream(http, f"/threads/{thread_id}/runs", body)
    events = parse_wire(raw)
    check_sdk_rules(events)
    names = [name for name, _ in events]
    assert names[-4:] == ["thread.message.incomplete", "thread.run.step.completed", "thread.run.incomplete", "done"]
    message, run = events[-4][1], events[-2][1]
    assert message["incomplete_details"] == {"reason": "max_tokens"}
    assert run["incomplete_details"] == {"reason": "max_completion_tokens"} and run["usage"]["completion_tokens"] == 256
    streamed = "".join(d["delta"]["content"][0]["text"]["value"] for n, d in events if n == "thread.message.delta")
    assert streamed == message["content"][0]["text"]["value"], "the deltas concatenate to the cut text"
