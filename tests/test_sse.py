"""Golden bytes of the pure SSE encoder (`emulator.sse`), table-driven, and a line of a stream the hosted API
sent (openai-php/client's fixture ThreadRunStreamResponse.txt) re-encoded byte for byte from its parsed JSON.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from emulator import sse
from emulator.runs import events

GOLDEN: list[tuple[str, str, Any, bytes]] = [
    (
        "compact object",
        "thread.run.created",
        {"id": "run_1", "n": 1, "ok": True, "none": None},
        b'event: thread.run.created\ndata: {"id":"run_1","n":1,"ok":true,"none":null}\n\n',
    ),
    (
        "key order kept, nested, no spaces",
        "x",
        {"b": [1, 2, {"c": []}], "a": {}},
        b'event: x\ndata: {"b":[1,2,{"c":[]}],"a":{}}\n\n',
    ),
    ("floats as Python writes them", "x", {"top_p": 1.0, "t": 0.7}, b'event: x\ndata: {"top_p":1.0,"t":0.7}\n\n'),
    (
        "unicode raw, not escaped",
        "thread.message.delta",
        {"value": "h\u00e9llo \u2603 \U0001f600"},
        b'event: thread.message.delta\ndata: {"value":"h\xc3\xa9llo \xe2\x98\x83 \xf0\x9f\x98\x80"}\n\n',
    ),
    (
        "a newline inside a JSON string stays escaped on one line",
        "x",
        {"text": "a\nb\r\nc"},
        b'event: x\ndata: {"text":"a\\nb\\r\\nc"}\n\n',
    ),
    (
        "U+2028/U+2029/U+0085 are not SSE line breaks",
        "x",
        {"v": "a\u2028b\u2029c\x85d"},
        b'event: x\ndata: {"v":"a\xe2\x80\xa8b\xe2\x80\xa9c\xc2\x85d"}\n\n',
    ),
    ("a string payload is sent as is", "done", "[DONE]", b"event: done\ndata: [DONE]\n\n"),
    (
        "a multi-line string payload: one data line per line",
        "x",
        "one\ntwo\r\nthree\rfour",
        b"event: x\ndata: one\ndata: two\ndata: three\ndata: four\n\n",
    ),
    ("a trailing line break survives as an empty data line", "x", "a\n", b"event: x\ndata: a\ndata: \n\n"),
    ("an empty string payload", "x", "", b"event: x\ndata: \n\n"),
    ("an empty object", "x", {}, b"event: x\ndata: {}\n\n"),
]


@pytest.mark.parametrize(("name", "data", "expected"), [case[1:] for case in GOLDEN], ids=[c[0] for c in GOLDEN])
def test_encode_golden_bytes(name: str, data: Any, expected: bytes) -> None:
    assert sse.encode(name, data) == expected


@pytest.mark.parametrize("name", ["bad\nname", "bad\rname", "\n", "thread.run\r\n"])
def test_an_event_name_with_a_line_break_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="line break"):
        sse.encode(name, {"a": 1})


def test_done_and_error_events() -> None:
    assert sse.DONE == b"event: done\ndata: [DONE]\n\n"
    body = {"error": {"message": "Boom \u00e9.", "type": "server_error", "param": None, "code": "server_error"}}
    assert sse.encode_error(body) == (
        b'event: error\ndata: {"error":{"message":"Boom \xc3\xa9.","type":"server_error","param":null,'
        b'"code":"server_error"}}\n\n'
    )


def _parse(raw: bytes) -> tuple[str, str]:
    """What an SSE client reads back: the event name and the data lines joined by newlines."""
    name, data = "", []
    for line in raw.decode().split("\n"):
        if line.startswith("event: "):
            name = line[len("event: ") :]
        elif line.startswith("data: "):
            data.append(line[len("data: ") :])
    return name, "\n".join(data)


@pytest.mark.parametrize("data", [{"v": "x\u2028y\u0085z\nw"}, {"nested": [{"a": "\u00e9\n\t"}]}])
def test_a_client_reads_back_the_same_json(data: Any) -> None:
    name, payload = _parse(sse.encode("thread.message.delta", data))
    assert name == "thread.message.delta"
    assert json.loads(payload) == data


# From /work/shared/transcripts/ThreadRunStreamResponse.txt (a stream the hosted API sent), verbatim.
HOSTED_STEP_COMPLETED = (
    'data: {"id":"step_3P1u5J5Rs95lypEfvQ3rMdPL","object":"thread.run.step","created_at":1720104399,"'
    'run_id":"run_s1X8yAjuUBlwhGrqiahzfnH7","assistant_id":"asst_JA9Pc6eQ744nbec10slSz5BU","thread_id'
    '":"thread_sSbvUX4J1FqlUZBv6BaBbOj4","type":"message_creation","status":"completed","cancelled_at'
    '":null,"completed_at":1720104399,"expires_at":1720104998,"failed_at":null,"last_error":null,"ste'
    'p_details":{"type":"message_creation","message_creation":{"message_id":"msg_zKgPBqNcqb7qYP2bBA3t'
    'VyTd"}},"usage":{"prompt_tokens":1138,"completion_tokens":11,"total_tokens":1149}}'
)
HOSTED_FIRST_DELTA = (
    'data: {"id":"msg_zKgPBqNcqb7qYP2bBA3tVyTd","object":"thread.message.delta","delta":{"content":[{'
    '"index":0,"type":"text","text":{"value":"Hello","annotations":[]}}]}}'
)


def test_a_hosted_event_re_encodes_byte_identically() -> None:
    data = json.loads(HOSTED_STEP_COMPLETED.removeprefix("data: "))
    expected = f"event: thread.run.step.completed\n{HOSTED_STEP_COMPLETED}\n\n".encode()
    assert sse.encode("thread.run.step.completed", data) == expected


def test_our_first_message_delta_is_the_hosted_one_byte_for_byte() -> None:
    event = events.message_delta("msg_zKgPBqNcqb7qYP2bBA3tVyTd", "Hello", first=True)
    assert sse.encode(event.name, event.data) == f"event: thread.message.delta\n{HOSTED_FIRST_DELTA}\n\n".encode()
    later = events.message_delta("msg_zKgPBqNcqb7qYP2bBA3tVyTd", "!", first=False)
    assert later.data["delta"]["content"] == [{"index": 0, "type": "text", "text": {"value": "!"}}]
