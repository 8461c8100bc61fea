"""The upstream client against a fake chat completions server over real HTTP (loopback): deltas as they come,
tool calls assembled, usage, the request the upstream receives, every failure mapped to its code, and
cancellation closing the request."""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest

from emulator.upstream.client import UpstreamClient
from emulator.upstream.config import UpstreamConfig, parse_model_map
from emulator.upstream.deltas import Finish, FinishedTurn, TextDelta, ToolCallDelta, Usage
from emulator.upstream.errors import UpstreamError
from emulator.upstream.request import (
    CODE_INTERPRETER_FUNCTION,
    FILE_SEARCH_FUNCTION,
    ConversationMessage,
    ToolCallOutcome,
    ToolRound,
    TurnRequest,
)
from tests.fake_upstream import FakeToolCall, FakeUpstream, Reply

T = TypeVar("T")

HELLO = TurnRequest(model="gpt-4o", instructions="Be brief.", messages=(ConversationMessage("user", "Hi"),))


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as running:
        yield running


def _config(upstream: FakeUpstream, **overrides: Any) -> UpstreamConfig:
    values: dict[str, Any] = {
        "url": upstream.url,
        "models": parse_model_map("*=fake-model"),
        "timeout_seconds": 5,  # a client that waits for the whole answer fails in seconds, not minutes
        **overrides,
    }
    return UpstreamConfig(**values)


def _run(config: UpstreamConfig, work: Callable[[UpstreamClient], Awaitable[T]]) -> T:
    async def main() -> T:
        async with UpstreamClient(config) as client:
            return await work(client)

    return asyncio.run(main())


async def _collect(client: UpstreamClient, request: TurnRequest = HELLO) -> tuple[list[Any], FinishedTurn]:
    deltas = []
    async with client.stream(request) as turn:
        async for delta in turn:
            deltas.append(delta)
    return deltas, turn.finished()


def _failure(config: UpstreamConfig, request: TurnRequest = HELLO) -> UpstreamError:
    with pytest.raises(UpstreamError) as caught:
        _run(config, lambda client: _collect(client, request))
    return caught.value


def test_text_arrives_delta_by_delta_while_the_upstream_is_still_writing(upstream: FakeUpstream) -> None:
    reply = Reply(text=["Hel", "lo", " world"], hold_after=2)
    upstream.reply(reply)

    async def work(client: UpstreamClient) -> tuple[list[Any], FinishedTurn, bool]:
        async with client.stream(HELLO) as turn:
            deltas = aiter(turn)
            first = await anext(deltas)
            # The upstream holds after its second chunk (it may still be writing it): not everything was sent.
            held = not upstream.requests[0].completed and upstream.requests[0].chunks_sent <= 2
            reply.release.set()
            rest = [delta async for delta in deltas]
        return [first, *rest], turn.finished(), held

    deltas, finished, held = _run(_config(upstream), work)
    assert deltas[0] == TextDelta("Hel")
    assert held, "the first delta reached the client only once the upstream had sent everything"
    assert [delta for delta in deltas if isinstance(delta, TextDelta)] == [
        TextDelta("Hel"),
        TextDelta("lo"),
        TextDelta(" world"),
    ]
    assert deltas[-2:] == [Finish("stop"), Usage(prompt_tokens=12, completion_tokens=7)]
    assert finished == FinishedTurn(text="Hello world", tool_calls=(), usage=Usage(12, 7), finish_reason="stop")


def test_paced_deltas_arrive_at_the_upstreams_pace(upstream: FakeUpstream) -> None:
    upstream.reply(Reply(text="one two three four five six", tokens_per_second=20))

    async def work(client: UpstreamClient) -> list[float]:
        arrivals = []
        async with client.stream(HELLO) as turn:
            async for delta in turn:
                if isinstance(delta, TextDelta):
                    arrivals.append(time.monotonic())
        return arrivals

    arrivals = _run(_config(upstream), work)
    assert len(arrivals) == 6
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    # 50 ms apart as sent; a starved test process may read two at once now and then, but not most of them.
    assert len([gap for gap in gaps if gap > 0.02]) >= 3, gaps
    assert arrivals[-1] - arrivals[0] > 0.2


def test_tool_calls_are_assembled_from_argument_fragments(upstream: FakeUpstream) -> None:
    upstream.reply(
        Reply(
            tool_calls=[
                FakeToolCall("get_weather", '{"city": "Paris", "unit": "celsius"}', pieces=4, id="call_a"),
                FakeToolCall("get_time", '{"zone": "Europe/Paris"}', pieces=3, id="call_b"),
            ]
        )
    )
    deltas, finished = _run(_config(upstream), _collect)
    fragments = [delta for delta in deltas if isinstance(delta, ToolCallDelta) and delta.arguments]
    assert len([delta for delta in fragments if delta.index == 0]) == 4
    assert len([delta for delta in fragments if delta.index == 1]) == 3
    heads = [delta for delta in deltas if isinstance(delta, ToolCallDelta) and delta.name]
    assert [(head.index, head.id, head.name) for head in heads] == [
        (0, "call_a", "get_weather"),
        (1, "call_b", "get_time"),
    ]
    assert finished.finish_reason == "tool_calls"
    assert finished.text == ""
    assert [(call.id, call.name, call.parsed) for call in finished.tool_calls] == [
        ("call_a", "get_weather", {"city": "Paris", "unit": "celsius"}),
        ("call_b", "get_time", {"zone": "Europe/Paris"}),
    ]
    assert finished.tool_calls[0].arguments == '{"city": "Paris", "unit": "celsius"}'


def test_usage_is_none_when_the_upstream_reports_none(upstream: FakeUpstream) -> None:
    body = {"model": "fake-model", "messages": [{"role": "user", "content": "Hi"}], "stream": True}

    async def work(client: UpstreamClient) -> FinishedTurn:
        async with client.stream_body(body) as turn:
            async for _delta in turn:
                pass
        return turn.finished()

    finished = _run(_config(upstream), work)
    assert finished.usage is None
    assert finished.text == "Hello from the fake upstream."


def test_a_whole_json_answer_is_read_as_one_turn(upstream: FakeUpstream) -> None:
    message = {"role": "assistant", "content": "All at once.", "tool_calls": None}
    completion = {
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4},
    }
    upstream.reply(Reply(whole=completion))
    deltas, finished = _run(_config(upstream), _collect)
    assert deltas == [TextDelta("All at once."), Finish("stop"), Usage(3, 4)]
    assert finished.text == "All at once."


def _sse_chunk(content: str | None = None, finish: str | None = None) -> str:
    delta = {} if content is None else {"content": content}
    return json.dumps({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


def test_any_sse_framing_reads_the_same(upstream: FakeUpstream) -> None:
    first, second, last = _sse_chunk("Hello"), _sse_chunk(" there"), _sse_chunk(finish="stop")
    half = len(second) // 2
    upstream.reply(
        Reply(
            raw_body=[
                b": keep-alive comment\r\n\r\n",
                f"event: message\r\nid: 1\r\ndata:{first}\r".encode(),
                b"\n\r\n",
                f"data: {second[:half]}".encode(),
                f"{second[half:]}\n\n".encode(),
                f"data: {last[:10]}\ndata: {last[10:]}\n\ndata: [DONE]\n\n".encode(),
            ]
        )
    )
    deltas, finished = _run(_config(upstream), _collect)
    assert deltas == [TextDelta("Hello"), TextDelta(" there"), Finish("stop")]
    assert finished.text == "Hello there"


def test_a_last_event_without_its_blank_line_is_read(upstream: FakeUpstream) -> None:
    upstream.reply(Reply(raw_body=[f"data: {_sse_chunk('Hi', 'stop')}\n\ndata: [DONE]".encode()]))
    deltas, _finished = _run(_config(upstream), _collect)
    assert deltas == [TextDelta("Hi"), Finish("stop")]


FULL_REQUEST = TurnRequest(
    model="gpt-4o",
    instructions="You are a weather bot.\nAnswer in French.",
    messages=(
        ConversationMessage("user", "Hello"),
        ConversationMessage("assistant", "Bonjour"),
        ConversationMessage("user", "Weather in Paris?"),
    ),
    tool_rounds=(
        ToolRound((ToolCallOutcome("call_1", "get_weather", '{"city":"Paris"}', "18C"),)),
        ToolRound(
            (
                ToolCallOutcome("call_2", "file_search", '{"query":"paris climate"}', "【0:0†a.txt】 Mild."),
                ToolCallOutcome("call_3", "code_interpreter", '{"code":"print(1)"}', "1"),
            )
        ),
    ),
    tools=(
        {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}, "strict": False}},
        {"type": "file_search", "file_search": {"max_num_results": 5}},
        {"type": "code_interpreter"},
    ),
    tool_choice={"type": "file_search"},
    parallel_tool_calls=False,
    temperature=0.2,
    top_p=0.9,
    response_format={
        "type": "json_schema",
        "json_schema": {"name": "weather", "schema": {"type": "object"}, "strict": True, "description": None},
    },
    max_completion_tokens=256,
)


def test_the_upstream_receives_the_whole_turn(upstream: FakeUpstream) -> None:
    config = _config(upstream, api_key="sk-upstream-secret", models=parse_model_map("gpt-4o=llama3.1:8b,*=other"))
    _run(config, lambda client: _collect(client, FULL_REQUEST))
    received = upstream.requests[0]
    assert received.path == "/v1/chat/completions"
    assert received.headers["authorization"] == "Bearer sk-upstream-secret"
    assert received.body == {
        "model": "llama3.1:8b",
        "messages": [
            {"role": "system", "content": "You are a weather bot.\nAnswer in French."},
            {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": "Bonjour"},
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "file_search", "arguments": '{"query":"paris climate"}'},
                    },
                    {
                        "id": "call_3",
                        "type": "function",
                        "function": {"name": "code_interpreter", "arguments": '{"code":"print(1)"}'},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "call_2", "content": "【0:0†a.txt】 Mild."},
            {"role": "tool", "tool_call_id": "call_3", "content": "1"},
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
        "tools": [
            {
                "type": "function",
                "function": {"name": "get_weather", "parameters": {"type": "object"}, "strict": False},
            },
            {"type": "function", "function": FILE_SEARCH_FUNCTION},
            {"type": "function", "function": CODE_INTERPRETER_FUNCTION},
        ],
        "tool_choice": {"type": "function", "function": {"name": "file_search"}},
        "parallel_tool_calls": False,
        "temperature": 0.2,
        "top_p": 0.9,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "weather", "schema": {"type": "object"}, "strict": True},
        },
        "max_completion_tokens": 256,
    }
    assert FILE_SEARCH_FUNCTION["parameters"]["properties"] == {
        "query": {
            "type": "string",
            "description": json.loads(
                json.dumps(FILE_SEARCH_FUNCTION["parameters"]["properties"]["query"]["description"])
            ),
        }
    }
    assert FILE_SEARCH_FUNCTION["parameters"]["required"] == ["query"]
    assert CODE_INTERPRETER_FUNCTION["parameters"]["required"] == ["code"]
    assert list(CODE_INTERPRETER_FUNCTION["parameters"]["properties"]) == ["code"]


def test_a_plain_turn_sends_only_what_it_has(upstream: FakeUpstream) -> None:
    request = TurnRequest(
        model="gpt-4o-mini",
        instructions="",
        messages=(ConversationMessage("user", "Hi"),),
        response_format={"type": "json_object"},
    )
    _run(_config(upstream, models=parse_model_map("gpt-4o=llama3.1:8b")), lambda client: _collect(client, request))
    received = upstream.requests[0]
    assert "authorization" not in received.headers
    assert received.body == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "response_format": {"type": "json_object"},
    }


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_429_is_rate_limit_exceeded_with_the_upstreams_message(upstream: FakeUpstream) -> None:
    upstream.reply(Reply(status=429, error={"error": {"message": "Slow down, please."}}, headers={"Retry-After": "7"}))
    config = _config(
        upstream, url=f"http://user:hunter2@127.0.0.1:{upstream.port}/v1?key=hunter2", api_key="sk-hunter2"
    )
    error = _failure(config)
    assert (error.code, error.kind, error.status) == ("rate_limit_exceeded", "status", 429)
    assert f"http://127.0.0.1:{upstream.port}/v1/chat/completions" in error.message
    assert "429" in error.message and "Slow down, please." in error.message and "retry after 7 s" in error.message
    assert "hunter2" not in error.message


def test_500_is_a_server_error_naming_the_status(upstream: FakeUpstream) -> None:
    upstream.reply(Reply(status=500))
    error = _failure(_config(upstream))
    assert (error.code, error.kind, error.status) == ("server_error", "status", 500)
    assert "answered 500" in error.message and "fake failure 500" in error.message
    assert upstream.url in error.message


def test_an_error_answer_that_is_not_json_is_quoted(upstream: FakeUpstream) -> None:
    upstream.reply(Reply(status=502, error="Bad gateway from the proxy"))  # type: ignore[arg-type]
    error = _failure(_config(upstream))
    assert (error.code, error.status) == ("server_error", 502)
    assert "Bad gateway from the proxy" in error.message


def test_an_upstream_slower_than_the_timeout_is_a_server_error(upstream: FakeUpstream) -> None:
    upstream.reply(Reply(text="late", delay_before=5))
    started = time.monotonic()
    error = _failure(_config(upstream, timeout_seconds=0.3))
    assert time.monotonic() - started < 3
    assert (error.code, error.kind) == ("server_error", "timeout")
    assert "did not answer within 0.3 s" in error.message and upstream.url in error.message


def test_a_stall_mid_stream_longer_than_the_timeout_is_a_server_error(upstream: FakeUpstream) -> None:
    upstream.reply(Reply(text="first then nothing", hold_after=2))
    error = _failure(_config(upstream, timeout_seconds=0.3))
    assert (error.code, error.kind) == ("server_error", "timeout")
    assert error.message == f"the upstream at {upstream.url}/chat/completions sent nothing for 0.3 s mid-stream"


def test_a_refused_connection_is_a_server_error() -> None:
    config = UpstreamConfig(url=f"http://127.0.0.1:{_closed_port()}/v1")
    error = _failure(config)
    assert (error.code, error.kind) == ("server_error", "connect")
    assert f"could not connect to the upstream at {config.display_url}" in error.message


def test_hanging_up_without_an_answer_is_a_server_error(upstream: FakeUpstream) -> None:
    upstream.reply(Reply(hang_up=True))
    error = _failure(_config(upstream))
    assert (error.code, error.kind) == ("server_error", "connect")
    assert f"the upstream at {upstream.url}/chat/completions closed the connection without answering" in error.message


def test_a_stream_cut_mid_way_is_a_server_error_after_the_deltas_before_it(upstream: FakeUpstream) -> None:
    upstream.reply(Reply(text="one two three four", cut_after=3))
    seen: list[Any] = []
    partial: list[str] = []

    async def work(client: UpstreamClient) -> None:
        async with client.stream(HELLO) as turn:
            try:
                async for delta in turn:
                    seen.append(delta)
            finally:
                partial.append(turn.text_so_far)

    with pytest.raises(UpstreamError) as caught:
        _run(_config(upstream), work)
    assert (caught.value.code, caught.value.kind) == ("server_error", "stream_cut")
    assert "broke off its answer mid-stream" in caught.value.message
    assert seen == [TextDelta("one"), TextDelta(" two")]
    assert partial == ["one two"]


def test_a_stream_that_ends_without_finishing_is_a_server_error(upstream: FakeUpstream) -> None:
    chunk = {"choices": [{"index": 0, "delta": {"content": "half"}, "finish_reason": None}]}
    upstream.reply(Reply(raw_chunks=[json.dumps(chunk)], send_done=False))
    error = _failure(_config(upstream))
    assert (error.code, error.kind) == ("server_error", "stream_cut")
    assert "without finishing it" in error.message


def test_invalid_tool_arguments_are_a_server_error(upstream: FakeUpstream) -> None:
    upstream.reply(Reply(tool_calls=[FakeToolCall("get_weather", '{"city": "Par', pieces=2)]))
    error = _failure(_config(upstream))
    assert (error.code, error.kind) == ("server_error", "invalid_arguments")
    assert "get_weather" in error.message and "not valid JSON" in error.message


def test_tool_arguments_that_are_not_an_object_are_a_server_error(upstream: FakeUpstream) -> None:
    upstream.reply(Reply(tool_calls=[FakeToolCall("get_weather", '["Paris"]')]))
    error = _failure(_config(upstream))
    assert (error.code, error.kind) == ("server_error", "invalid_arguments")
    assert "not a JSON object" in error.message


@pytest.mark.parametrize(
    ("chunk", "problem"),
    [
        ("{not json", "a chunk is not JSON"),
        ('{"choices": {"index": 0}}', "choices is dict, not list"),
        ('{"choices": [{"index": 0, "delta": {"content": 5}}]}', "delta.content is int, not str"),
        ('{"choices": [{"index": 0, "delta": {"tool_calls": [{"index": "0"}]}}]}', "tool call index is str"),
    ],
)
def test_a_malformed_chunk_is_a_server_error(upstream: FakeUpstream, chunk: str, problem: str) -> None:
    upstream.reply(Reply(raw_chunks=[chunk]))
    error = _failure(_config(upstream))
    assert (error.code, error.kind) == ("server_error", "malformed")
    assert "sent a malformed chunk" in error.message and problem in error.message


@pytest.mark.parametrize(
    ("error", "code"),
    [
        ({"message": "The server is overloaded", "type": "server_error"}, "server_error"),
        ({"message": "Too many tokens", "code": "rate_limit_exceeded"}, "rate_limit_exceeded"),
    ],
)
def test_an_error_sent_mid_stream_fails_the_turn(upstream: FakeUpstream, error: dict[str, str], code: str) -> None:
    content = {"choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None}]}
    upstream.reply(Reply(raw_chunks=[json.dumps(content), json.dumps({"error": error})]))
    failure = _failure(_config(upstream))
    assert (failure.code, failure.kind) == (code, "stream_error")
    assert error["message"] in failure.message


def test_reading_to_the_end_leaves_the_request_completed(upstream: FakeUpstream) -> None:
    upstream.reply(Reply(text="short answer"))
    _run(_config(upstream), _collect)
    received = upstream.requests[0]
    assert received.wait_ended()
    assert received.completed and not received.closed_by_client


def test_cancelling_the_task_closes_the_request(upstream: FakeUpstream) -> None:
    upstream.reply(Reply(text="a long answer " * 50, tokens_per_second=50))

    async def work(client: UpstreamClient) -> int:
        first = asyncio.Event()
        count = 0

        async def consume() -> None:
            nonlocal count
            async with client.stream(HELLO) as turn:
                async for delta in turn:
                    if isinstance(delta, TextDelta):
                        count += 1
                        first.set()

        task = asyncio.create_task(consume())
        await first.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # Asked while the client (and its connection pool) is still open.
        assert await asyncio.to_thread(upstream.requests[0].wait_ended, 2), "the upstream still streams"
        return count

    count = _run(_config(upstream), work)
    received = upstream.requests[0]
    assert received.closed_by_client and not received.completed
    assert count < 20


def test_leaving_the_stream_early_closes_the_request(upstream: FakeUpstream) -> None:
    reply = Reply(text="first and then more", hold_after=2)
    upstream.reply(reply)

    async def work(client: UpstreamClient) -> None:
        async with client.stream(HELLO) as turn:
            async for _delta in turn:
                break
        # Asked while the client (and its connection pool) is still open.
        assert await asyncio.to_thread(upstream.requests[0].wait_ended, 2), "the upstream still streams"

    _run(_config(upstream), work)
    received = upstream.requests[0]
    assert received.closed_by_client and not received.completed
    assert not reply.release.is_set()


def test_many_concurrent_streams_share_one_client(upstream: FakeUpstream) -> None:
    upstream.reply(*(Reply(text=f"answer {number} ok", tokens_per_second=50) for number in range(150)))

    async def work(client: UpstreamClient) -> list[str]:
        turns = await asyncio.gather(*(client.complete(HELLO) for _ in range(150)))
        return [turn.text for turn in turns]

    texts = _run(_config(upstream), work)
    assert sorted(texts) == sorted(f"answer {number} ok" for number in range(150))
