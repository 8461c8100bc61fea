"""Startup options of the control plane, each on an extra server: `--script FILE` (JSON and YAML) and the seed."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import OpenAI
from pydantic import ValidationError

from emulator.app import create_app
from emulator.settings import Settings
from tests.control_helpers import WEATHER, consumed, script
from tests.extra_server import extra_server
from tests.server import RunningServer, postgres_database, run_server

SCRIPT_TURNS = [
    {"type": "text", "text": "From the file, first."},
    {"type": "function_calls", "calls": [{"name": "get_weather", "arguments": {"city": "Lima"}}]},
    {"type": "text", "text": "Only for questions.", "match": {"message_regex": r"\?$"}},
]

YAML_SCRIPT = """\
# Scripted turns for every tenant
turns:
  - type: text
    text: From YAML.
    chunk_size: 2
  - type: failure
    code: invalid_prompt
    message: Flagged by the YAML script.
"""


def _tenant(server: RunningServer, key: str | None = None) -> tuple[OpenAI, httpx.Client]:
    key = key or f"sk-test-{uuid.uuid4().hex}"
    control = httpx.Client(base_url=f"{server.root_url}/_emulator", headers={"Authorization": f"Bearer {key}"})
    return OpenAI(base_url=server.base_url, api_key=key, max_retries=0), control


def _ask(client: OpenAI, assistant_id: str, text: str) -> tuple[str, Any]:
    thread = client.beta.threads.create(messages=[{"role": "user", "content": text}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant_id)
    if run.status == "completed":
        message = client.beta.threads.messages.list(thread.id, limit=1).data[0]
        return message.content[0].text.value, run  # type: ignore[union-attr]
    return run.status, run


@contextmanager
def _database() -> Iterator[str | None]:
    """One database for two servers in turn: a fresh PostgreSQL one, or None (SQLite in the data dir)."""
    admin_url = os.environ.get("EMULATOR_TEST_DATABASE_URL")
    if admin_url:
        with postgres_database(admin_url) as url:
            yield url
    else:
        yield None


def test_a_json_script_file_plays_for_every_tenant_after_its_own_turns(tmp_path: Path) -> None:
    path = tmp_path / "turns.json"
    path.write_text(json.dumps({"turns": SCRIPT_TURNS}))
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    key = f"sk-test-{uuid.uuid4().hex}"
    with _database() as database_url:
        with run_server(data_dir, database_url, EMULATOR_SCRIPT=str(path)) as server:
            client, control = _tenant(server, key)
            assistant_id = client.beta.assistants.create(model="gpt-5.5", tools=[WEATHER]).id
            script(control, {"type": "text", "text": "My own turn."})
            assert _ask(client, assistant_id, "a")[0] == "My own turn.", "the tenant's own turns come first"
            assert _ask(client, assistant_id, "b")[0] == "From the file, first."
            status, run = _ask(client, assistant_id, "c")
            assert status == "requires_action"
            [call] = run.required_action.submit_tool_outputs.tool_calls
            assert (call.function.name, call.function.arguments) == ("get_weather", '{"city":"Lima"}')
            client.beta.threads.runs.cancel(run_id=run.id, thread_id=run.thread_id)
            assert _ask(client, assistant_id, "no question")[0] == "You said: no question", "the match applies"
            assert _ask(client, assistant_id, "a question?")[0] == "Only for questions."
            assert _ask(client, assistant_id, "again?")[0] == "You said: again?", "the file's turns play once"
            played = consumed(control)
            assert [turn["turn"]["type"] for turn in played] == ["text", "text", "function_calls", "text"]
            assert all(turn["run_id"].startswith("run_") and turn["request"] for turn in played)

            # Another tenant gets the file's turns too, from the beginning: tenants never share a queue.
            other, other_control = _tenant(server)
            other_assistant = other.beta.assistants.create(model="gpt-5.5").id
            assert _ask(other, other_assistant, "hello")[0] == "From the file, first."
            assert [turn["turn"]["text"] for turn in consumed(other_control)] == ["From the file, first."]
            assert len(consumed(control)) == 4, "one tenant's playback is invisible to another"
            control.close()
            other_control.close()

        # A restart (or a second replica) over the same database loads the same file again: nothing is added.
        with run_server(data_dir, database_url, EMULATOR_SCRIPT=str(path)) as server:
            client, control = _tenant(server, key)
            assert _ask(client, assistant_id, "later?")[0] == "You said: later?"
            assert len(consumed(control)) == 4
            newcomer, newcomer_control = _tenant(server)
            newcomer_assistant = newcomer.beta.assistants.create(model="gpt-5.5").id
            assert _ask(newcomer, newcomer_assistant, "hi")[0] == "From the file, first."
            control.close()
            newcomer_control.close()


def test_a_script_file_with_an_invalid_turn_stops_the_server(tmp_path: Path) -> None:
    """In process (a subprocess would only add its start-up time): the lifespan refuses the file."""
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"turns": [{"type": "speech", "text": "hi"}]}))
    app = create_app(Settings(data_dir=tmp_path, script=path))

    async def start() -> None:
        async with app.router.lifespan_context(app):
            pass

    with pytest.raises(ValidationError) as refused:
        asyncio.run(start())
    assert refused.value.errors()[0]["loc"][:2] == ("turns", 0)
    assert refused.value.errors()[0]["type"] == "union_tag_invalid"


def _session(server: RunningServer) -> dict[str, Any]:
    """A fixed request sequence; returns every id and output it produced."""
    client = OpenAI(base_url=server.base_url, api_key="sk-same-key", max_retries=0)
    assistant = client.beta.assistants.create(model="gpt-5.5", tools=[WEATHER], instructions="Be brief.")
    # The YAML script's two turns: a text streamed in chunks of 2 characters, then a failure.
    first = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    with client.beta.threads.runs.stream(thread_id=first.id, assistant_id=assistant.id) as stream:
        pieces = [e.data.delta.content[0].text.value for e in stream if e.event == "thread.message.delta"]  # type: ignore[union-attr]
    status, failed = _ask(client, assistant.id, "x")
    assert status == "failed"
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Please get weather for Paris."}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    [call] = run.required_action.submit_tool_outputs.tool_calls  # type: ignore[union-attr]
    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": call.id, "output": "sunny"}]
    )
    messages = client.beta.threads.messages.list(thread.id, order="asc").data
    steps = client.beta.threads.runs.steps.list(run_id=run.id, thread_id=thread.id, order="asc").data
    streamed = client.beta.threads.create_and_run(
        assistant_id=assistant.id, stream=True, thread={"messages": [{"role": "user", "content": "Say hi"}]}
    )
    stream_events = [(event.event, getattr(event.data, "id", None)) for event in streamed]
    return {
        "scripted": (pieces, failed.last_error.code, failed.last_error.message, failed.id),
        "ids": [assistant.id, thread.id, run.id, call.id, *(m.id for m in messages), *(s.id for s in steps)],
        "call": (call.function.name, call.function.arguments),
        "texts": [m.content[0].text.value for m in messages],  # type: ignore[union-attr]
        "usage": run.usage.model_dump() if run.usage else None,
        "stream": stream_events,
    }


def test_the_same_seed_and_a_yaml_script_give_the_same_ids_and_outputs(tmp_path: Path) -> None:
    path = tmp_path / "turns.yaml"
    path.write_text(YAML_SCRIPT)
    outcomes = []
    for attempt in range(2):
        data_dir = tmp_path / f"seeded-{attempt}"
        data_dir.mkdir()
        with extra_server(data_dir, EMULATOR_SEED="42", EMULATOR_SCRIPT=str(path)) as server:
            outcomes.append(_session(server))
    first, second = outcomes
    assert first == second
    pieces, code, message, _failed_run = first["scripted"]
    assert pieces == ["Fr", "om", " Y", "AM", "L."]
    assert (code, message) == ("invalid_prompt", "Flagged by the YAML script.")
    assert first["ids"][0].startswith("asst_") and len(set(first["ids"])) == len(first["ids"])
    assert first["texts"][-1] == "Based on the tool results: get_weather returned sunny."
    assert first["stream"][-1] == ("thread.run.completed", first["stream"][-1][1])


def _ids_of_a_run_read_late(server: RunningServer, pause: float) -> list[str]:
    """Ids a seeded server gives: a run, then (after `pause` seconds) another thread, then the run read to its end."""
    client = OpenAI(base_url=server.base_url, api_key="sk-seeded", max_retries=0)
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hello"}])
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    time.sleep(pause)
    other = client.beta.threads.create()
    run = client.beta.threads.runs.poll(run.id, thread_id=thread.id, poll_interval_ms=50)
    assert run.status == "completed"
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id).data
    messages = client.beta.threads.messages.list(thread.id).data
    return [run.id, other.id, *(step.id for step in steps), *(message.id for message in messages)]


def test_a_seeded_server_gives_the_same_ids_whenever_the_client_reads(tmp_path: Path) -> None:
    """With `--seed` the runner leaves runs to reads: a client that reads its run a second later (after making
    another thread) gets the ids one that read at once got, its thread's included."""
    outcomes = []
    for pause in (0.0, 1.0):
        data_dir = tmp_path / f"seeded-{pause}"
        data_dir.mkdir()
        with extra_server(data_dir, EMULATOR_SEED="7") as server:
            outcomes.append(_ids_of_a_run_read_late(server, pause))
    assert outcomes[0] == outcomes[1]
