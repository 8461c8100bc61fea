"""Small helpers shared by the control-plane tests (`tests/test_control_*.py`)."""

from __future__ import annotations

import json
from typing import Any

import httpx

BETA = {"OpenAI-Beta": "assistants=v2"}

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]},
    },
}


def script(control: httpx.Client, *turns: dict[str, Any]) -> list[dict[str, Any]]:
    response = control.post("/script", json={"turns": list(turns)})
    assert response.status_code == 200, response.text
    return response.json()["data"]


def consumed(control: httpx.Client) -> list[dict[str, Any]]:
    response = control.get("/script/consumed")
    assert response.status_code == 200, response.text
    return response.json()["data"]


def advance(control: httpx.Client, seconds: int) -> int:
    response = control.post("/clock/advance", json={"seconds": seconds})
    assert response.status_code == 200, response.text
    return response.json()["now"]


def now(control: httpx.Client) -> int:
    return control.get("/clock").json()["now"]


def fresh_window(control: httpx.Client) -> int:
    """Move the emulator clock to the start of the next one-minute rate-limit window (so none ends mid-test)."""
    current = now(control)
    return advance(control, 60 - current % 60)


def sse_events(body: str) -> list[tuple[str, Any]]:
    """Parse an SSE body into (event name, data) pairs; `data` is parsed JSON unless it is `[DONE]`."""
    events = []
    for block in body.split("\n\n"):
        if not block.strip():
            continue
        name, data_lines = "", []
        for line in block.split("\n"):
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                data_lines.append(line[len("data: ") :])
        data = "\n".join(data_lines)
        events.append((name, data if data == "[DONE]" else json.loads(data)))
    return events


def deltas(events: list[tuple[str, Any]]) -> list[str]:
    """The text of every `thread.message.delta`, in order."""
    return [
        part["text"]["value"]
        for name, data in events
        if name == "thread.message.delta"
        for part in data["delta"]["content"]
    ]


def beta_headers(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}", **BETA}
