"""An upstream's turn reaches the run's stream as the upstream sends it, over real HTTP with the official SDK and
the fake upstream (`tests.fake_upstream`): text and argument deltas as they come, the message readable while it
grows, a cancel mid-generation that closes the upstream's request, a stream cut mid-way."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import AssistantEventHandler, OpenAI
from openai.types.beta.threads import Message, Text, TextDelta
from openai.types.beta.threads.runs import ToolCall, ToolCallDelta

from emulator import tokens
from tests.extra_server import extra_server
from tests.fake_upstream import FakeToolCall, FakeUpstream, Received, Reply, build_chunks
from tests.server import RunningServer, postgres_database, run_server


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture(scope="module")
def upstream_server(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with extra_server(tmp_path_factory.mktemp("live-data"), EMULATOR_UPSTREAM_URL=upstream.url,
                      EMULATOR_UPSTREAM_TIMEOUT_SECONDS="5") as running:
        yield running


@pytest.fixture
def client(upstream_server: RunningServer) -> OpenAI:
    return OpenAI(base_url=upstream_server.base_url, api_key=f"sk-{uuid.uuid4().hex}", max_retries=0, timeout=30)


def _start(client: OpenAI, text: str, **assistant: Any) -> tuple[str, str]:
    assistant_id = client.beta.assistants.create(model="gpt-4o", **assistant).id
    return assistant_id, client.beta.threads.create(messages=[{"role": "user", "content": text}]).id


def _asked_next(upstream: FakeUpstream, before: int) -> Received:
    deadline = time.monotonic() + 10
    while len(upstream.requests) == before and time.monotonic() < deadline:
        time.sleep(0.01)
    return upstream.requests[before]


def _until(check: Callable[[], Any], seconds: float = 10) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError("never came")


def test_text_reaches_the_stream_delta_by_delta_before_the_upstream_has_finished(
    client: OpenAI, upstream: FakeUpstream
) -> None:
    words = ["Rivers", " run", " to", " the", " sea", "."]
    held = Reply(text=words, hold_after=4)  # the role chunk and three words, then the upstream waits
    upstream.reply(held)
    assistant_id, thread_id = _start(client, "Where do rivers run?")
    before = len(upstream.requests)
    seen: list[str] = []
    upstream_done_at_first: list[bool] = []

    class Handler(AssistantEventHandler):
        def on_text_delta(self, delta: TextDelta, snapshot: Text) -> None:
            if not seen:
                upstream_done_at_first.append(upstream.requests[before].completed)
            seen.append(delta.value or "")
            if len(seen) == 3:
                held.release.set()

    with client.beta.threads.runs.stream(thread_id=thread_id, assistant_id=assistant_id,
                                         event_handler=Handler()) as stream:
        stream.until_done()
        final = stream.get_final_messages()
        run = stream.get_final_run()
    assert upstream_done_at_first == [False]
    assert seen == words  # the upstream's fragments, unchanged
    assert run.status == "completed"
    assert [message.content[0].text.value for message in final] == ["Rivers run to the sea."]  # type: ignore[union-attr]
    stored = client.beta.threads.messages.list(thread_id, limit=1).data[0]
    assert (stored.status, stored.content[0].text.value) == ("completed", "Rivers run to the sea.")  # type: ignore[union-attr]
    steps = client.beta.threads.runs.steps.list(run_id=run.id, thread_id=thread_id).data
    assert [step.type for step in steps] == ["message_creation"]


def test_function_arguments_stream_as_deltas_then_outputs_stream_the_answer(
    client: OpenAI, upstream: FakeUpstream
) -> None:
    arguments = '{"city": "Lyon", "unit": "celsius"}'
    upstream.reply(Reply(tool_calls=[FakeToolCall("get_weather", arguments, pieces=4)]),
                   Reply(text="Mild in Lyon."))
    tools = [{"type": "function", "function": {"name": "get_weather"}}]
    assistant_id, thread_id = _start(client, "Weather in Lyon?", tools=tools)
    fragments: list[str] = []
    finished: list[ToolCall] = []

    class Handler(AssistantEventHandler):
        def on_tool_call_delta(self, delta: ToolCallDelta, snapshot: ToolCall) -> None:
            if delta.type == "function" and delta.function is not None and delta.function.arguments:
                fragments.append(delta.function.arguments)

        def on_tool_call_done(self, tool_call: ToolCall) -> None:
            finished.append(tool_call)

    with client.beta.threads.runs.stream(thread_id=thread_id, assistant_id=assistant_id,
                                         event_handler=Handler()) as stream:
        stream.until_done()
        run = stream.get_final_run()
    assert len(fragments) == 4 and "".join(fragments) == arguments
    assert run.status == "requires_action" and run.required_action is not None
    (call,) = run.required_action.submit_tool_outputs.tool_calls
    assert (call.function.name, call.function.arguments) == ("get_weather", arguments)
    (done,) = finished
    assert done.type == "function" and done.id == call.id and done.function.arguments == arguments
    texts: list[str] = []

    class Answer(AssistantEventHandler):
        def on_text_delta(self, delta: TextDelta, snapshot: Text) -> None:
            texts.append(delta.value or "")

    with client.beta.threads.runs.submit_tool_outputs_stream(
        run_id=run.id, thread_id=thread_id, tool_outputs=[{"tool_call_id": call.id, "output": "14 C"}],
        event_handler=Answer(),
    ) as answering:
        answering.until_done()
        run = answering.get_final_run()
    assert run.status == "completed" and texts == ["Mild", " in", " Lyon."]


def test_streamed_arguments_add_up_to_the_recorded_ones_when_the_upstream_wrote_none(
    client: OpenAI, upstream: FakeUpstream
) -> None:
    """A call the upstream made with no arguments is `{}` on record (required_action, the step): its stream sends
    the `{}` too, so that a client adding up the fragments gets the arguments it will be asked for. A call with
    arguments (blanks around them included) streams and stores them as the upstream wrote them."""
    written = ' {"zone": "UTC"} '
    upstream.reply(Reply(tool_calls=[FakeToolCall("get_time", ""), FakeToolCall("get_date", written, pieces=2),
                                     FakeToolCall("get_zone", "")]))  # closed as the next begins; as the turn ends
    tools = [{"type": "function", "function": {"name": name}} for name in ("get_time", "get_date", "get_zone")]
    assistant_id, thread_id = _start(client, "What time and date is it?", tools=tools)
    fragments: dict[int, list[str]] = {}
    done: list[ToolCall] = []

    class Handler(AssistantEventHandler):
        def on_tool_call_delta(self, delta: ToolCallDelta, snapshot: ToolCall) -> None:
            assert delta.type == "function" and delta.function is not None
            fragments.setdefault(delta.index, []).append(delta.function.arguments or "")

        def on_tool_call_done(self, tool_call: ToolCall) -> None:
            done.append(tool_call)

    with client.beta.threads.runs.stream(thread_id=thread_id, assistant_id=assistant_id,
                                         event_handler=Handler()) as stream:
        stream.until_done()
        run = stream.get_final_run()
    assert run.status == "requires_action" and run.required_action is not None
    required = [call.function.arguments for call in run.required_action.submit_tool_outputs.tool_calls]
    assert required == ["{}", written, "{}"]
    assert ["".join(fragments[index]) for index in sorted(fragments)] == required
    assert [call.function.arguments for call in done if call.type == "function"] == required  # the SDK's snapshots
    (step,) = client.beta.threads.runs.steps.list(run_id=run.id, thread_id=thread_id).data
    assert step.step_details.type == "tool_calls"
    assert [call.function.arguments for call in step.step_details.tool_calls  # type: ignore[union-attr]
            if call.type == "function"] == required
    client.beta.threads.runs.cancel(run.id, thread_id=thread_id)


def test_the_message_being_generated_is_readable_with_its_text_so_far(
    client: OpenAI, upstream: FakeUpstream
) -> None:
    held = Reply(text=["Slowly", " but", " surely", "."], hold_after=3)
    upstream.reply(held)
    assistant_id, thread_id = _start(client, "How?")
    run = client.beta.threads.runs.create(thread_id=thread_id, assistant_id=assistant_id)
    reader = threading.Thread(target=lambda: client.beta.threads.runs.retrieve(run.id, thread_id=thread_id))
    reader.start()  # this read makes the model call

    def growing() -> Message | None:
        messages = client.beta.threads.messages.list(thread_id, limit=1).data
        shown = messages[0] if messages and messages[0].role == "assistant" else None
        return shown if shown is not None and shown.content else None

    message = _until(growing)
    assert message.status == "in_progress" and message.run_id == run.id
    assert message.content[0].text.value == "Slowly but"
    again = client.beta.threads.messages.retrieve(message.id, thread_id=thread_id)
    assert (again.status, again.content[0].text.value) == ("in_progress", "Slowly but")  # type: ignore[union-attr]
    held.release.set()
    reader.join(10)
    run = client.beta.threads.runs.poll(run.id, thread_id=thread_id)
    assert run.status == "completed"
    done = client.beta.threads.messages.retrieve(message.id, thread_id=thread_id)
    assert (done.status, done.content[0].text.value) == ("completed", "Slowly but surely.")  # type: ignore[union-attr]


def test_a_cancel_mid_generation_closes_the_upstream_call_and_keeps_the_partial_text(
    client: OpenAI, upstream: FakeUpstream
) -> None:
    held = Reply(text=["Counting", " one", " two", " three", " four"], hold_after=3)
    upstream.reply(held)
    assistant_id, thread_id = _start(client, "Count slowly.")
    before = len(upstream.requests)
    names: list[str] = []
    run_ids: list[str] = []

    def follow() -> None:
        with client.beta.threads.runs.stream(thread_id=thread_id, assistant_id=assistant_id) as stream:
            for event in stream:
                names.append(event.event)
                if event.event == "thread.run.created":
                    run_ids.append(event.data.id)

    streamer = threading.Thread(target=follow)
    streamer.start()
    _until(lambda: names.count("thread.message.delta") == 2)
    asked = upstream.requests[before]
    started = time.monotonic()
    assert client.beta.threads.runs.cancel(run_ids[0], thread_id=thread_id).status == "cancelling"
    assert asked.wait_ended(5) and asked.closed_by_client and not asked.completed
    assert time.monotonic() - started < 2
    streamer.join(10)
    assert names[-3:] == ["thread.message.incomplete", "thread.run.step.cancelled", "thread.run.cancelled"]
    run = client.beta.threads.runs.retrieve(run_ids[0], thread_id=thread_id)
    assert run.status == "cancelled"
    message = client.beta.threads.messages.list(thread_id, limit=1).data[0]
    assert (message.status, message.content[0].text.value) == ("incomplete", "Counting one")  # type: ignore[union-attr]
    # The upstream reported no usage (it comes last): the prompt and the partial text are counted here.
    assert run.usage is not None and run.usage.prompt_tokens > 0
    assert run.usage.completion_tokens == tokens.count("Counting one", "o200k_base")
    (step,) = client.beta.threads.runs.steps.list(run_id=run.id, thread_id=thread_id).data
    assert step.status == "cancelled" and step.usage is not None
    assert step.usage.completion_tokens == run.usage.completion_tokens


@pytest.mark.parametrize("failure", ["cut", "error-chunk"])
def test_a_stream_broken_mid_answer_fails_the_run_and_keeps_the_partial_text(
    client: OpenAI, upstream: FakeUpstream, failure: str
) -> None:
    if failure == "cut":
        upstream.reply(Reply(text=["Half", " an", " answer", " then", " nothing"], cut_after=3))
    else:
        chunks = build_chunks(Reply(text=["Half", " an"]), "m", include_usage=False)[:3]
        upstream.reply(Reply(raw_chunks=[*chunks, '{"error": {"message": "overloaded", "type": "server_error"}}']))
    assistant_id, thread_id = _start(client, "Go on.")
    names: list[str] = []
    with client.beta.threads.runs.stream(thread_id=thread_id, assistant_id=assistant_id) as stream:
        for event in stream:
            names.append(event.event)
        run = stream.get_final_run()
    assert names.count("thread.message.delta") == 2
    assert run.status == "failed" and run.last_error is not None and run.last_error.code == "server_error"
    assert "upstream" in run.last_error.message
    message = client.beta.threads.messages.list(thread_id, limit=1).data[0]
    assert (message.status, message.content[0].text.value) == ("incomplete", "Half an")  # type: ignore[union-attr]
    assert run.usage is not None and run.usage.completion_tokens == tokens.count("Half an", "o200k_base")


def test_unparseable_streamed_arguments_fail_the_run_and_its_step(client: OpenAI, upstream: FakeUpstream) -> None:
    upstream.reply(Reply(tool_calls=[FakeToolCall("lookup", '{"term": "un', pieces=2)]))
    tools = [{"type": "function", "function": {"name": "lookup"}}]
    assistant_id, thread_id = _start(client, "Look it up.", tools=tools)
    with client.beta.threads.runs.stream(thread_id=thread_id, assistant_id=assistant_id) as stream:
        stream.until_done()
        run = stream.get_final_run()
    assert run.status == "failed" and run.last_error is not None and "not valid JSON" in run.last_error.message
    (step,) = client.beta.threads.runs.steps.list(run_id=run.id, thread_id=thread_id).data
    assert step.type == "tool_calls" and step.status == "failed"


def test_text_before_tool_calls_completes_its_message_then_the_calls_step_opens(
    client: OpenAI, upstream: FakeUpstream, tmp_path: Path
) -> None:
    upstream.reply(Reply(text=["Let", " me", " check."], tool_calls=[FakeToolCall("lookup", '{"term": "x"}')]))
    assistant_id, thread_id = _start(client, "Check.", tools=[{"type": "function", "function": {"name": "lookup"}}])
    with client.beta.threads.runs.stream(thread_id=thread_id, assistant_id=assistant_id) as stream:
        stream.until_done()
        run = stream.get_final_run()
    assert run.status == "requires_action"
    steps = client.beta.threads.runs.steps.list(run_id=run.id, thread_id=thread_id, order="asc").data
    assert [(step.type, step.status) for step in steps] == [("message_creation", "completed"),
                                                           ("tool_calls", "in_progress")]
    message = client.beta.threads.messages.list(thread_id, limit=1).data[0]
    assert (message.status, message.content[0].text.value) == ("completed", "Let me check.")  # type: ignore[union-attr]


def test_a_stream_that_goes_mid_generation_leaves_the_answer_to_the_next_read(
    client: OpenAI, upstream: FakeUpstream, upstream_server: RunningServer
) -> None:
    held = Reply(text=["Still", " here", " after", " all."], hold_after=3)
    upstream.reply(held)
    assistant_id, thread_id = _start(client, "Are you there?")
    before = len(upstream.requests)
    headers = {"Authorization": f"Bearer {client.api_key}", "OpenAI-Beta": "assistants=v2"}
    with httpx.Client(base_url=upstream_server.base_url, headers=headers, timeout=30) as raw, raw.stream(
        "POST", f"/threads/{thread_id}/runs", json={"assistant_id": assistant_id, "stream": True}
    ) as response:
        for line in response.iter_lines():
            if line == "event: thread.message.delta":
                break  # the client goes after the first fragment
    asked = upstream.requests[before]
    held.release.set()
    assert asked.wait_ended(10) and asked.completed  # the call went on without its stream
    started = time.monotonic()
    run = _until(lambda: next(iter(client.beta.threads.runs.list(thread_id).data), None))
    run = client.beta.threads.runs.poll(run.id, thread_id=thread_id, poll_interval_ms=50)
    assert run.status == "completed" and time.monotonic() - started < 5  # not after the claim's 30 s lease
    message = client.beta.threads.messages.list(thread_id, limit=1).data[0]
    assert (message.status, message.content[0].text.value) == ("completed", "Still here after all.")  # type: ignore[union-attr]
    assert len(upstream.requests) == before + 1


if os.environ.get("EMULATOR_TEST_DATABASE_URL"):  # two replicas share PostgreSQL: only in the suite's PostgreSQL pass

    def test_a_second_replica_reads_the_growing_message_and_its_cancel_ends_the_call(
        upstream: FakeUpstream, tmp_path: Path
    ) -> None:
        held = Reply(text=["Shared", " across", " replicas", " here"], hold_after=3)
        upstream.reply(held)
        env = {"EMULATOR_UPSTREAM_URL": upstream.url}
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        with postgres_database(os.environ["EMULATOR_TEST_DATABASE_URL"]) as url, \
                run_server(tmp_path / "a", url, **env) as first, run_server(tmp_path / "b", url, **env) as second:
            key = f"sk-{uuid.uuid4().hex}"
            generating = OpenAI(base_url=first.base_url, api_key=key, max_retries=0, timeout=30)
            other = OpenAI(base_url=second.base_url, api_key=key, max_retries=0, timeout=30)
            assistant_id, thread_id = _start(generating, "Hello replicas.")
            before = len(upstream.requests)
            names: list[str] = []

            def follow() -> None:
                with generating.beta.threads.runs.stream(thread_id=thread_id, assistant_id=assistant_id) as stream:
                    names.extend(event.event for event in stream)

            streamer = threading.Thread(target=follow)
            streamer.start()

            def growing() -> Message | None:
                shown = other.beta.threads.messages.list(thread_id, limit=1).data[0]
                return shown if shown.role == "assistant" and shown.content else None

            message = _until(growing)
            assert (message.status, message.content[0].text.value) == ("in_progress", "Shared across")  # type: ignore[union-attr]
            asked = upstream.requests[before]
            run_id = message.run_id
            assert run_id is not None
            assert other.beta.threads.runs.cancel(run_id, thread_id=thread_id).status == "cancelling"
            assert asked.wait_ended(5) and asked.closed_by_client and not asked.completed  # the first replica's call
            streamer.join(10)
            assert names[-1] == "thread.run.cancelled"
            run = other.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
            assert run.status == "cancelled" and run.usage is not None and run.usage.completion_tokens > 0
            done = other.beta.threads.messages.retrieve(message.id, thread_id=thread_id)
            assert (done.status, done.content[0].text.value) == ("incomplete", "Shared across")  # type: ignore[union-attr]


def test_a_streamed_text_past_the_completion_cap_is_stored_as_the_client_saw_it(
    client: OpenAI, upstream: FakeUpstream
) -> None:
    """The upstream overran `max_completion_tokens` (its tokenizer is not ours): the text already went out whole,
    so the message keeps it whole, ends incomplete, and the run counts no more than its cap."""
    words = [" word"] * 300
    upstream.reply(Reply(text=words, usage=(12, 300), finish_reason="length"))
    assistant_id, thread_id = _start(client, "Talk at length.")
    with client.beta.threads.runs.stream(thread_id=thread_id, assistant_id=assistant_id,
                                         max_completion_tokens=256) as stream:
        streamed = "".join(stream.text_deltas)
        run = stream.get_final_run()
    assert streamed == "".join(words)
    assert run.status == "incomplete" and run.incomplete_details is not None
    assert run.incomplete_details.reason == "max_completion_tokens"
    assert run.usage is not None and run.usage.completion_tokens == 256
    stored = client.beta.threads.messages.list(thread_id, limit=1).data[0]
    assert stored.status == "incomplete"
    assert stored.content[0].text.value == streamed  # type: ignore[union-attr]
