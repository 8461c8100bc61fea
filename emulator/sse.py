"""The Server-Sent Events encoder: pure bytes, no I/O.

Each event is `event: <name>\\ndata: <compact JSON>\\n\\n`, as the hosted API sent them (see the stream
transcripts); the stream ends with `event: done\\ndata: [DONE]\\n\\n`. An `error` event carries the same
`{"error": {...}}` envelope as an HTTP error. A payload that holds line breaks (CR, LF or CRLF: the only ones
SSE knows) goes out as one `data:` line per line; other separators such as U+2028 stay inside their line.
Compact JSON never holds one (the encoder escapes them inside strings), so an event's JSON is one line as it is:
every streamed delta is encoded here, and this is the cheap path.
"""

from __future__ import annotations

import json
import re
from typing import Any

DONE = b"event: done\ndata: [DONE]\n\n"
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_compact_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
"""`json.dumps(data, ensure_ascii=False, separators=(",", ":"))`, without building an encoder per call."""


def encode(name: str, data: Any) -> bytes:
    if "\n" in name or "\r" in name:
        raise ValueError("an event name cannot contain a line break")
    if not isinstance(data, str):
        return f"event: {name}\ndata: {_compact_json(data)}\n\n".encode()
    lines = _LINE_BREAK.split(data)
    return (f"event: {name}\n" + "".join(f"data: {line}\n" for line in lines) + "\n").encode()


def encode_error(error_body: dict[str, Any]) -> bytes:
    return encode("error", error_body)
