"""Runs answered by an upstream model (`--upstream-url`), over real HTTP with the official SDK, against the fake
upstream (`tests.fake_upstream`): what it is asked, how its answers become steps and messages, how its failures
fail runs, a cancel while it is slow, and record then replay without it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import AssistantEventHandler, OpenAI
from openai.types.beta.threads import Text, TextDelta

from emulator import limits, tokens
from emulator.__main__ import banner
from emulator.settings import Settings
from tests.extra_server import extra_server
from tests.fake_upstream import FakeToolCall, FakeUpstream, Received, Reply, build_chunks
from tests.server import RunningServer
from tests.storage import query

TIMEOUT_SECONDS = 3


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture(scope="module")
def record_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("recorded") / "turns.json"


@pytest.fixture(scope="module")
def upstream_server(
    upstream: FakeUpstream, record_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    with extra_server(
        tmp_path_factory.mktemp("upstream-data"),
        EMULATOR_UPSTREAM_URL=upstream.url,
        EMULATOR_UPSTREAM_MODELS="gpt-4o=fake-small,*=fake-large",
        EMULATOR_UPSTREAM_API_KEY="sk-upstream",
        EMULATOR_UPSTREAM_TIMEOUT_SECONDS=str(TIMEOUT_SECONDS),
        EMULATOR_RECORD=str(record_file),
    ) as running:
        yield running


@pytest.fixture
def client(upstream_server: RunningServer) -> OpenAI:
    return OpenAI(base_url=upstream_server.base_url, api_key=f"sk-{uuid.uuid4().hex}", max_retries=0, timeout=30)


def _assistant(client: OpenAI, **fields: Any) -> str:
    return client.beta.assistants.create(model="gpt-4o", instructions="Be brief.", **fields).id


def _thread(client: OpenAI, text: str) -> str:
    return client.beta.threads.create(messages=[{"role": "user", "content": text}]).id


def _asked(upstream: FakeUpstream, count: int) -> list[Received]:
    """The last `count` requests the upstream received."""
    return upstream.requests[-count:]


def _answer(client: OpenAI, thread_id: str) -> Any:
    return client.beta.threads.messages.list(thread_id, limit=1).data[0]


def test_a_text_answer_comes_from_the_upstream_with_its_usage(client: OpenAI, upstream: FakeUpstream) -> None:
    upstream.reply(Reply(text="Paris is the capital of France.", usage=(31, 8)))
    thread_id = _thread(client, "What is the capital of France?")
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread_id, assistant_id=_assistant(client), additional_instructions="Answer in English."
    )
    assert run.status == "completed", run.last_error
    assert _answer(client, thread_id).content[0].text.value == "Paris is the capital of France."
    assert run.usage is not None and (run.usage.prompt_tokens, run.usage.completion_tokens) == (31, 8)
    (asked,) = _asked(upstream, 1)
    assert asked.path == "/v1/chat/completions"
    assert asked.headers["authorization"] == "Bearer sk-upstream"
    body = asked.body
    assert body["model"] == "fake-small" and body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["messages"] == [
        {"role": "system", "content": "Be brief.\nAnswer in English."},
        {"role": "user", "content": "What is the capital of France?"},
    ]
    steps = list(client.beta.threads.runs.steps.list(run_id=run.id, thread_id=thread_id))
    assert [step.type for step in steps] == ["message_creation"]


def test_a_streamed_run_gets_the_upstream_text_as_deltas(client: OpenAI, upstream: FakeUpstream) -> None:
    upstream.reply(Reply(text="One two three four."))
    deltas: list[str] = []

    class Handler(AssistantEventHandler):
        def on_text_delta(self, delta: TextDelta, snapshot: Text) -> None:
            deltas.append(delta.value or "")

    thread_id = _thread(client, "Count to four.")
    with client.beta.threads.runs.stream(
        thread_id=thread_id, assistant_id=_assistant(client), event_handler=Handler()
    ) as stream:
        stream.until_done()
        run = stream.get_final_run()
    assert run.status == "completed"
    assert "".join(deltas) == "One two three four."
    assert len(deltas) > 1
    assert _answer(client, thread_id).content[0].text.value == "One two three four."


def test_a_function_call_round_trip_through_submit_tool_outputs(client: OpenAI, upstream: FakeUpstream) -> None:
    upstream.reply(
        Reply(tool_calls=[FakeToolCall("get_weather", '{"city": "Paris"}', id="call_up1")]),
        Reply(text="It is sunny in Paris."),
    )
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}}}}]
    thread_id = _thread(client, "Weather in Paris?")
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread_id, assistant_id=_assistant(client, tools=tools)
    )
    assert run.status == "requires_action"
    assert run.required_action is not None
    (call,) = run.required_action.submit_tool_outputs.tool_calls
    assert (call.function.name, json.loads(call.function.arguments)) == ("get_weather", {"city": "Paris"})
    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id, thread_id=thread_id, tool_outputs=[{"tool_call_id": call.id, "output": "sunny, 24 C"}]
    )
    assert run.status == "completed", run.last_error
    assert _answer(client, thread_id).content[0].text.value == "It is sunny in Paris."
    first, second = _asked(upstream, 2)
    assert first.body["tools"] == tools and first.body["tool_choice"] == "auto"
    assert second.body["messages"][-2:] == [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": call.id, "type": "function",
             "function": {"name": "get_weather", "arguments": call.function.arguments}}
        ]},
        {"role": "tool", "tool_call_id": call.id, "content": "sunny, 24 C"},
    ]


def test_a_streamed_function_call_round_trip(client: OpenAI, upstream: FakeUpstream) -> None:
    upstream.reply(
        Reply(tool_calls=[FakeToolCall("get_time", '{"zone": "UTC"}')]),
        Reply(text="It is noon."),
    )
    tools = [{"type": "function", "function": {"name": "get_time"}}]
    thread_id = _thread(client, "What time is it?")
    with client.beta.threads.runs.stream(thread_id=thread_id, assistant_id=_assistant(client, tools=tools)) as stream:
        stream.until_done()
        run = stream.get_final_run()
    assert run.status == "requires_action" and run.required_action is not None
    (call,) = run.required_action.submit_tool_outputs.tool_calls
    assert (call.function.name, call.function.arguments) == ("get_time", '{"zone": "UTC"}')
    with client.beta.threads.runs.submit_tool_outputs_stream(
        run_id=run.id, thread_id=thread_id, tool_outputs=[{"tool_call_id": call.id, "output": "12:00"}]
    ) as stream:
        stream.until_done()
        run = stream.get_final_run()
    assert run.status == "completed"
    assert _answer(client, thread_id).content[0].text.value == "It is noon."


def test_usage_is_counted_here_when_the_upstream_reports_none(client: OpenAI, upstream: FakeUpstream) -> None:
    upstream.reply(Reply(raw_chunks=build_chunks(Reply(text="Hello there, friend."), "m", include_usage=False)))
    thread_id = _thread(client, "Say hello.")
    run = client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=_assistant(client))
    assert run.status == "completed" and run.usage is not None
    assert run.usage.completion_tokens == tokens.count("Hello there, friend.", "o200k_base")
    assert run.usage.prompt_tokens > 0


def test_file_search_called_by_the_upstream_is_run_here_with_citations(
    client: OpenAI, upstream: FakeUpstream
) -> None:
    store = client.vector_stores.create(name="kb")
    client.vector_stores.files.upload_and_poll(
        vector_store_id=store.id, file=("cats.txt", b"Cats sleep sixteen hours a day. They purr when content.")
    )
    marker = "【0:0†cats.txt】"
    upstream.reply(
        Reply(tool_calls=[FakeToolCall("file_search", '{"query": "how long do cats sleep"}')]),
        Reply(text=f"Cats sleep sixteen hours a day{marker}."),
    )
    assistant_id = _assistant(
        client, tools=[{"type": "file_search"}], tool_resources={"file_search": {"vector_store_ids": [store.id]}}
    )
    thread_id = _thread(client, "How long do cats sleep?")
    run = client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id)
    assert run.status == "completed", run.last_error
    steps = list(client.beta.threads.runs.steps.list(
        run_id=run.id, thread_id=thread_id, order="asc",
        include=["step_details.tool_calls[*].file_search.results[*].content"],
    ))
    assert [step.type for step in steps] == ["tool_calls", "message_creation"]
    (search,) = steps[0].step_details.tool_calls  # type: ignore[union-attr]
    assert search.type == "file_search"
    assert search.file_search.results[0].file_name == "cats.txt"  # type: ignore[union-attr]
    text = _answer(client, thread_id).content[0].text
    (annotation,) = text.annotations
    assert annotation.type == "file_citation" and annotation.text == marker
    assert text.value[annotation.start_index:annotation.end_index] == marker
    first, second = _asked(upstream, 2)
    assert [tool["function"]["name"] for tool in first.body["tools"]] == ["file_search"]
    tool_round = second.body["messages"][-2:]
    assert tool_round[0]["tool_calls"][0]["function"] == {
        "name": "file_search", "arguments": json.dumps({"query": "how long do cats sleep"})
    }
    assert tool_round[1]["content"].startswith(f"{marker} Cats sleep sixteen hours a day.")


def test_code_interpreter_called_by_the_upstream_runs_in_our_sandbox(client: OpenAI, upstream: FakeUpstream) -> None:
    upstream.reply(
        Reply(tool_calls=[FakeToolCall("code_interpreter", json.dumps({"code": "print(6 * 7)"}))]),
        Reply(text="The answer is 42."),
    )
    thread_id = _thread(client, "What is six times seven? Use code.")
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread_id, assistant_id=_assistant(client, tools=[{"type": "code_interpreter"}])
    )
    assert run.status == "completed", run.last_error
    steps = list(client.beta.threads.runs.steps.list(run_id=run.id, thread_id=thread_id, order="asc"))
    assert [step.type for step in steps] == ["tool_calls", "message_creation"]
    (cell,) = steps[0].step_details.tool_calls  # type: ignore[union-attr]
    assert cell.type == "code_interpreter" and cell.code_interpreter.input == "print(6 * 7)"  # type: ignore[union-attr]
    assert [(out.type, out.logs) for out in cell.code_interpreter.outputs] == [("logs", "42\n")]  # type: ignore[union-attr]
    assert _answer(client, thread_id).content[0].text.value == "The answer is 42."
    _first, second = _asked(upstream, 2)
    assert second.body["messages"][-1] == {"role": "tool", "tool_call_id": cell.id, "content": "42\n"}


def test_json_schema_and_sampling_settings_reach_the_upstream(client: OpenAI, upstream: FakeUpstream) -> None:
    upstream.reply(Reply(text='{"city": "Paris"}'))
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
              "additionalProperties": False}
    thread_id = _thread(client, "Which city?")
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread_id, assistant_id=_assistant(client), model="gpt-4o-mini", temperature=0.2, top_p=0.9,
        max_completion_tokens=300,
        response_format={"type": "json_schema", "json_schema": {"name": "place", "schema": schema, "strict": True}},
    )
    assert run.status == "completed", run.last_error
    (asked,) = _asked(upstream, 1)
    body = asked.body
    assert body["model"] == "fake-large"
    assert body["response_format"] == {
        "type": "json_schema", "json_schema": {"name": "place", "schema": schema, "strict": True}
    }
    assert (body["temperature"], body["top_p"], body["max_completion_tokens"]) == (0.2, 0.9, 300)
    assert _answer(client, thread_id).content[0].text.value == '{"city": "Paris"}'


@pytest.mark.parametrize(
    ("reply", "code", "words"),
    [
        (Reply(status=429, headers={"retry-after": "7"}), "rate_limit_exceeded", "rate limited"),
        (Reply(status=500), "server_error", "500"),
        (Reply(delay_before=TIMEOUT_SECONDS + 3), "server_error", f"did not answer within {TIMEOUT_SECONDS} s"),
        (Reply(text="a long answer cut short", cut_after=3), "server_error", "mid-stream"),
        (Reply(hang_up=True), "server_error", "closed the connection"),
        (Reply(tool_calls=[FakeToolCall("get_weather", '{"city": "Par')]), "server_error", "not valid JSON"),
    ],
    ids=["429", "500", "timeout", "cut-stream", "hang-up", "bad-arguments"],
)
def test_upstream_failures_fail_the_run(
    client: OpenAI, upstream: FakeUpstream, upstream_server: RunningServer, reply: Reply, code: str, words: str
) -> None:
    upstream.reply(reply)
    tools = [{"type": "function", "function": {"name": "get_weather"}}]
    thread_id = _thread(client, "Hello?")
    run = client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=_assistant(client, tools=tools))
    assert run.status == "failed"
    assert run.last_error is not None and run.last_error.code == code
    assert words in run.last_error.message and "upstream" in run.last_error.message
    log = (upstream_server.data_dir / "server.log").read_text()
    assert run.id in log
    # The thread is free again: the next run answers.
    upstream.reply(Reply(text="Back again."))
    run = client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=_assistant(client))
    assert run.status == "completed"


def _called(upstream: FakeUpstream, before: int) -> Received:
    """The one request the upstream receives after the first `before` (the runner's call, made with no read)."""
    deadline = time.monotonic() + 10
    while len(upstream.requests) == before and time.monotonic() < deadline:
        time.sleep(0.02)
    (asked,) = upstream.requests[before:]
    return asked


def _until_text(client: OpenAI, thread_id: str, text: str) -> None:
    """The answer being generated shows `text` so far (it is written every 250 ms while it grows)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        answer = client.beta.threads.messages.list(thread_id).data[0]
        if answer.role == "assistant" and answer.content and answer.content[0].text.value == text:  # type: ignore[union-attr]
            return
        time.sleep(0.02)
    raise AssertionError(f"the answer never showed {text!r}")


def test_a_cancel_while_the_upstream_is_slow_ends_the_run_cancelled(client: OpenAI, upstream: FakeUpstream) -> None:
    slow = Reply(text="This answer comes too late.", hold_after=2)
    upstream.reply(slow)
    thread_id = _thread(client, "Take your time.")
    before = len(upstream.requests)
    run = client.beta.threads.runs.create(thread_id=thread_id, assistant_id=_assistant(client))
    asked = _called(upstream, before)
    _until_text(client, thread_id, "This")
    assert client.beta.threads.runs.retrieve(run.id, thread_id=thread_id).status == "in_progress"
    assert client.beta.threads.runs.cancel(run.id, thread_id=thread_id).status == "cancelling"
    assert asked.wait_ended() and asked.closed_by_client and not asked.completed
    final = client.beta.threads.runs.poll(run.id, thread_id=thread_id, poll_interval_ms=100)
    assert final.status == "cancelled"
    slow.release.set()
    answer, _question = client.beta.threads.messages.list(thread_id).data
    # The text that had come stays, cut short; its tokens count.
    assert (answer.status, answer.content[0].text.value) == ("incomplete", "This")  # type: ignore[union-attr]
    assert answer.incomplete_details is not None and answer.incomplete_details.reason == "run_cancelled"
    assert final.usage is not None and final.usage.completion_tokens == 1 and final.usage.prompt_tokens > 0


def test_a_long_upstream_answer_keeps_its_claim_and_is_asked_once(client: OpenAI, upstream: FakeUpstream) -> None:
    """The claim is renewed while the upstream takes its time (here past several renewals): reads leave the run
    alone and answer at once, count no interruption, and the answer is recorded once, with nobody reading."""
    upstream.reply(Reply(text=["Worth"] + [" the"] * 28 + [" wait."], tokens_per_second=2.5))  # 12 s
    thread_id = _thread(client, "Think hard.")
    before = len(upstream.requests)
    run = client.beta.threads.runs.create(thread_id=thread_id, assistant_id=_assistant(client))
    asked = _called(upstream, before)
    time.sleep(9)
    started = time.monotonic()
    assert client.beta.threads.runs.retrieve(run.id, thread_id=thread_id).status == "in_progress"
    assert time.monotonic() - started < 1
    assert asked.wait_ended()
    time.sleep(1)
    assert client.beta.threads.runs.retrieve(run.id, thread_id=thread_id).status == "completed"
    assert len(upstream.requests) == before + 1
    assert _answer(client, thread_id).content[0].text.value == "Worth" + " the" * 28 + " wait."


def test_a_run_nobody_reads_asks_the_upstream_at_once(
    client: OpenAI, upstream: FakeUpstream, upstream_server: RunningServer
) -> None:
    """An upstream call is the runner's work: a queued run nobody reads is asked of the upstream at once, without
    the grace a stub run leaves its reader (`limits.RUNNER_GRACE_SECONDS`), and completes unread."""
    upstream.reply(Reply(text="At once."))
    thread_id = _thread(client, "Now?")
    assistant_id = _assistant(client)
    before = len(upstream.requests)
    started = time.monotonic()
    run = client.beta.threads.runs.create(thread_id=thread_id, assistant_id=assistant_id)
    _called(upstream, before)
    took = time.monotonic() - started
    assert took < limits.RUNNER_GRACE_SECONDS / 2, f"asked {took:.2f} s after the run was made"
    deadline = time.monotonic() + 10
    while _stored(upstream_server, run.id)[0] != "completed" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _stored(upstream_server, run.id) == ("completed", 0)
    assert _answer(client, thread_id).content[0].text.value == "At once."


def test_polls_answer_at_once_while_the_runner_waits_for_the_upstream(
    client: OpenAI, upstream: FakeUpstream, upstream_server: RunningServer
) -> None:
    """The runner makes the call, not a read: 20 concurrent polls during a 3 s answer each answer `in_progress`
    well within the upstream's time, and the run completes with nobody reading it."""
    upstream.reply(Reply(text=["Slow"] + [" and"] * 13 + [" steady."], tokens_per_second=5))  # 3 s
    thread_id = _thread(client, "Slow and steady?")
    before = len(upstream.requests)
    run = client.beta.threads.runs.create(thread_id=thread_id, assistant_id=_assistant(client))
    asked = _called(upstream, before)

    def poll(_: int) -> tuple[str, float]:
        started = time.monotonic()
        status = client.beta.threads.runs.retrieve(run.id, thread_id=thread_id).status
        return status, time.monotonic() - started

    with ThreadPoolExecutor(max_workers=20) as pool:
        polls = list(pool.map(poll, range(20)))
    assert not asked.completed  # every poll answered while the call was in flight
    assert {status for status, _took in polls} == {"in_progress"}
    assert max(took for _status, took in polls) < 1.0, polls
    assert asked.wait_ended()
    deadline = time.monotonic() + 10
    while _stored(upstream_server, run.id)[0] != "completed" and time.monotonic() < deadline:
        time.sleep(0.1)  # the database, not the API: a read would settle the run itself
    status, observations = _stored(upstream_server, run.id)
    assert (status, observations) == ("completed", 0)  # the polls found it held by the call: none moved it
    assert _answer(client, thread_id).content[0].text.value == "Slow" + " and" * 13 + " steady."
    assert len(upstream.requests) == before + 1


def _stored(server: RunningServer, run_id: str) -> tuple[str, int]:
    ((status, observations),) = query(server, "SELECT status, observations FROM runs WHERE id = :id", id=run_id)
    return status, observations


def test_a_run_that_expires_while_the_upstream_answers_ends_expired(
    client: OpenAI, upstream: FakeUpstream, upstream_server: RunningServer
) -> None:
    slow = Reply(text="Too late.", hold_after=2)
    upstream.reply(slow)
    thread_id = _thread(client, "Slowly, please.")
    before = len(upstream.requests)
    run = client.beta.threads.runs.create(thread_id=thread_id, assistant_id=_assistant(client))
    asked = _called(upstream, before)
    _until_text(client, thread_id, "Too")
    with httpx.Client(base_url=f"{upstream_server.root_url}/_emulator",
                      headers={"Authorization": f"Bearer {client.api_key}"}, timeout=30) as control:
        assert control.post("/clock/advance", json={"seconds": 11 * 60}).status_code == 200
    assert client.beta.threads.runs.poll(run.id, thread_id=thread_id, poll_interval_ms=100).status == "expired"
    slow.release.set()
    assert asked.wait_ended()
    answer, _question = client.beta.threads.messages.list(thread_id).data
    # The text that had come stays, cut short; the rest of the late answer is discarded.
    assert (answer.status, answer.content[0].text.value) == ("incomplete", "Too")  # type: ignore[union-attr]
    assert answer.incomplete_details is not None and answer.incomplete_details.reason == "run_expired"


def test_recorded_turns_replay_with_no_upstream(
    client: OpenAI, upstream: FakeUpstream, record_file: Path, tmp_path: Path
) -> None:
    question = f"Recorded question {uuid.uuid4().hex}?"
    upstream.reply(Reply(text="A recorded answer."))
    thread_id = _thread(client, question)
    run = client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=_assistant(client))
    assert run.status == "completed"
    recorded = json.loads(record_file.read_text())["turns"]
    assert recorded[-1]["type"] == "text" and recorded[-1]["text"] == "A recorded answer."
    with extra_server(tmp_path, EMULATOR_SCRIPT=str(record_file)) as offline:
        replay = OpenAI(base_url=offline.base_url, api_key="sk-replay", max_retries=0)
        thread_id = _thread(replay, question)
        run = replay.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=_assistant(replay))
        assert run.status == "completed"
        assert _answer(replay, thread_id).content[0].text.value == "A recorded answer."


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--record", "turns.json"], "--record needs an upstream"),
        (["--upstream-url", "ftp://x"], "is not an http:// or https:// URL"),
        (["--upstream-url", "http://127.0.0.1:9/v1", "--upstream-models", "gpt-4o"], "has no '='"),
        (["--upstream-url", "http://127.0.0.1:9/v1", "--upstream-timeout", "0"], "upstream_timeout_seconds"),
    ],
)
def test_bad_upstream_settings_stop_the_start_with_one_line(tmp_path: Path, args: list[str], words: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "emulator", "--data-dir", str(tmp_path), *args],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], done.stderr


def test_the_banner_names_the_model_backend(tmp_path: Path) -> None:
    assert "the stub model" in "\n".join(banner(Settings(data_dir=tmp_path)))
    shown = "\n".join(banner(Settings(data_dir=tmp_path, upstream_url="http://user:pw@127.0.0.1:11434/v1",
                                      upstream_api_key="sk-secret")))
    assert "upstream http://127.0.0.1:11434/v1" in shown and "pw" not in shown and "sk-secret" not in shown
