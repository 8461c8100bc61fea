"""The Server-Sent Events encoder: pure bytes, no I/O.

Each event is `event: <name>\\ndata: <compact JSON>\\n\\n`, as the hosted API sent them (see the stream
transcripts); the stream ends with `event: done\\ndata: [DONE]\\n\\n`. An `error` event carries the same
`{"error": {...}}` envelope as an HTTP error.
"""

from __future__ import annotations

import json
from typing import Any

DONE = b"event: done\ndata: [DONE]\n\n"


def encode(name: str, data: Any) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    if "\n" in name or "\r" in name:
        raise ValueError("an event name cannot contain a line break")
    lines = payload.splitlines() or [""]
    return (f"event: {name}\n" + "".join(f"data: {line}\n" for line in lines) + "\n").encode()


def encode_error(error_body: dict[str, Any]) -> bytes:
    return encode("error", error_body)
