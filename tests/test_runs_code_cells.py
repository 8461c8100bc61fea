"""A code cell is a runner's work, not a read's: a read that reaches a cell answers at once with the run and its
code_interpreter step `in_progress` (as the hosted API showed) while the runner runs the cell; polling then sees
the run completed. A stream still gets every event in order, a cancel mid-cell stops the cell and ends the run
`cancelled` with its result discarded, a seeded server gives the same ids and outputs, and a process killed
mid-cell leaves the run to another replica within seconds."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
from openai import AssistantEventHandler, OpenAI
from openai.types.beta.threads import Run

from tests.conftest import BETA
from tests.extra_server import extra_server
from tests.server import RunningServer, run_server

CELL_SECONDS = 3.0
SLOW_CELL = f"import time\ntime.sleep({CELL_SECONDS})\nprint('slept')"
CHEAP_READ_SECONDS = 0.5
"""A read during a cell answers well under a second (it used to wait for the whole cell)."""


def _fenced(code: str) -> str:
    return f"Please run this:\n```python\n{code}\n```"


def _thread_and_assistant(client: OpenAI, code: str) -> tuple[str, str]:
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[{"type": "code_interpreter"}])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": _fenced(code)}])
    return thread.id, assistant.id


def _timed_read(client: OpenAI, thread_id: str, run_id: str) -> tuple[Run, float]:
    started = time.monotonic()
    run = client.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
    return run, time.monotonic() - started


def _read_until_the_cell_runs(client: OpenAI, thread_id: str, run_id: str) -> list[float]:
    """Read the run until its code step shows in progress (the cell running); every read's duration."""
    durations = []
    deadline = time.monotonic() + CELL_SECONDS
    while time.monotonic() < deadline:
        run, took = _timed_read(client, thread_id, run_id)
        durations.append(took)
        assert run.status in ("queued", "in_progress"), run.status
        steps = client.beta.threads.runs.steps.list(run_id, thread_id=thread_id).data
        if steps:
            return durations
        time.sleep(0.05)
    raise AssertionError("the run's code step did not open")


def test_a_read_during_a_long_cell_answers_at_once_and_polling_sees_it_complete(client: OpenAI) -> None:
    thread_id, assistant_id = _thread_and_assistant(client, SLOW_CELL)
    created = client.beta.threads.runs.create(thread_id=thread_id, assistant_id=assistant_id)
    durations = _read_until_the_cell_runs(client, thread_id, created.id)
    for _ in range(3):
        run, took = _timed_read(client, thread_id, created.id)
        durations.append(took)
        assert run.status == "in_progress"
        started = time.monotonic()
        [step] = client.beta.threads.runs.steps.list(created.id, thread_id=thread_id).data
        durations.append(time.monotonic() - started)
        assert (step.type, step.status, step.completed_at) == ("tool_calls", "in_progress", None)
        [call] = step.step_details.tool_calls  # type: ignore[union-attr]
        assert call.type == "code_interpreter"
        assert (call.code_interpreter.input, call.code_interpreter.outputs) == (SLOW_CELL + "\n", [])  # type: ignore[union-attr]
        time.sleep(0.3)
    assert max(durations) < CHEAP_READ_SECONDS, durations
    finished = client.beta.threads.runs.poll(created.id, thread_id=thread_id, poll_interval_ms=100)
    assert (finished.status, finished.last_error) == ("completed", None)
    steps = client.beta.threads.runs.steps.list(created.id, thread_id=thread_id, order="asc").data
    assert [(step.type, step.status) for step in steps] == [("tool_calls", "completed"),
                                                           ("message_creation", "completed")]
    outputs = steps[0].step_details.tool_calls[0].code_interpreter.outputs  # type: ignore[union-attr]
    assert [(output.type, output.logs) for output in outputs] == [("logs", "slept\n")]  # type: ignore[union-attr]
    text = client.beta.threads.messages.list(thread_id, limit=1).data[0].content[0].text  # type: ignore[union-attr]
    assert text.value == "The code ran. Output:\nslept"


def test_create_and_poll_of_a_long_cell_is_unchanged(client: OpenAI) -> None:
    thread_id, assistant_id = _thread_and_assistant(client, "import time\ntime.sleep(1)\nprint(6 * 7)")
    run = client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id,
                                                   poll_interval_ms=200)
    assert (run.status, run.last_error) == ("completed", None)
    text = client.beta.threads.messages.list(thread_id, limit=1).data[0].content[0].text  # type: ignore[union-attr]
    assert text.value == "The code ran. Output:\n42"


class _Recorder(AssistantEventHandler):
    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def on_event(self, event) -> None:  # type: ignore[no-untyped-def]
        self.names.append(event.event)


def test_a_streamed_long_cell_gives_every_event_in_order_and_reads_meanwhile_answer_at_once(
    client: OpenAI,
) -> None:
    thread_id, assistant_id = _thread_and_assistant(client, SLOW_CELL)
    recorder = _Recorder()
    reads: list[tuple[str, float]] = []

    def read_during_the_cell() -> None:
        deadline = time.monotonic() + CELL_SECONDS
        while "thread.run.step.delta" not in recorder.names and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.5)
        runs = client.beta.threads.runs.list(thread_id).data
        run, took = _timed_read(client, thread_id, runs[0].id)
        reads.append((run.status, took))

    reader = threading.Thread(target=read_during_the_cell)
    reader.start()
    with client.beta.threads.runs.stream(thread_id=thread_id, assistant_id=assistant_id,
                                         event_handler=recorder) as stream:
        stream.until_done()
        final = stream.get_final_run()
    reader.join()
    deltas = [name for name in recorder.names if name == "thread.message.delta"]
    assert deltas, recorder.names
    assert recorder.names == [
        "thread.run.created", "thread.run.queued", "thread.run.in_progress",
        "thread.run.step.created", "thread.run.step.in_progress", "thread.run.step.delta",
        "thread.run.step.completed",
        "thread.run.step.created", "thread.run.step.in_progress", "thread.message.created",
        "thread.message.in_progress", *deltas, "thread.message.completed", "thread.run.step.completed",
        "thread.run.completed",
    ]
    assert final.status == "completed"
    [(status, took)] = reads
    assert status == "in_progress" and took < CHEAP_READ_SECONDS, reads


CANCEL_SECONDS = 5.0
"""A cancel reaches the cell within the claim's renewal (1.5 s) and the sandbox's next look (0.5 s)."""


def test_a_cancel_mid_cell_stops_the_cell_and_ends_the_run_cancelled(client: OpenAI) -> None:
    thread_id, assistant_id = _thread_and_assistant(client, "import time\ntime.sleep(60)\nprint('slept')")
    created = client.beta.threads.runs.create(thread_id=thread_id, assistant_id=assistant_id)
    _read_until_the_cell_runs(client, thread_id, created.id)
    time.sleep(0.5)
    started = time.monotonic()
    cancelling = client.beta.threads.runs.cancel(created.id, thread_id=thread_id)
    assert cancelling.status == "cancelling"
    ended = client.beta.threads.runs.poll(created.id, thread_id=thread_id, poll_interval_ms=100)
    assert ended.status == "cancelled" and ended.cancelled_at is not None
    assert time.monotonic() - started < CANCEL_SECONDS, "the cell was stopped, not waited for"
    [step] = client.beta.threads.runs.steps.list(created.id, thread_id=thread_id).data
    assert (step.type, step.status) == ("tool_calls", "cancelled")
    assert step.step_details.tool_calls[0].code_interpreter.outputs == []  # type: ignore[union-attr]
    messages = client.beta.threads.messages.list(thread_id).data
    assert [message.role for message in messages] == ["user"], "the stopped cell's result is discarded"
    next_run = client.beta.threads.runs.create_and_poll(
        thread_id=thread_id, assistant_id=assistant_id, poll_interval_ms=200,
        additional_messages=[{"role": "user", "content": _fenced("print('again')")}],
    )
    assert next_run.status == "completed", "the thread was freed"
    text = client.beta.threads.messages.list(thread_id, limit=1).data[0].content[0].text  # type: ignore[union-attr]
    assert text.value == "The code ran. Output:\nagain"


def _seeded_code_session(server: RunningServer) -> dict[str, object]:
    client = OpenAI(base_url=server.base_url, api_key="sk-seeded-cells", max_retries=0)
    code = "import time\ntime.sleep(1)\nopen('made.txt', 'w').write('made')\nprint('done')"
    thread_id, assistant_id = _thread_and_assistant(client, code)
    run = client.beta.threads.runs.create(thread_id=thread_id, assistant_id=assistant_id)
    in_progress = _read_until_the_cell_runs(client, thread_id, run.id)
    run = client.beta.threads.runs.poll(run.id, thread_id=thread_id, poll_interval_ms=100)
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread_id, order="asc").data
    messages = client.beta.threads.messages.list(thread_id, order="asc").data
    annotations = messages[-1].content[0].text.annotations  # type: ignore[union-attr]
    return {
        "read_in_progress": bool(in_progress),
        "status": run.status,
        "ids": [assistant_id, thread_id, run.id, *(step.id for step in steps), *(m.id for m in messages),
                *(annotation.file_path.file_id for annotation in annotations)],  # type: ignore[union-attr]
        "calls": [step.step_details.model_dump() for step in steps],
        "texts": [message.content[0].text.value for message in messages],  # type: ignore[union-attr]
        "usage": run.usage.model_dump() if run.usage else None,
    }


def test_two_fresh_seeded_servers_give_the_same_code_run(tmp_path: Path) -> None:
    outcomes = []
    for attempt in range(2):
        data_dir = tmp_path / f"seeded-{attempt}"
        data_dir.mkdir()
        with extra_server(data_dir, EMULATOR_SEED="11") as server:
            outcomes.append(_seeded_code_session(server))
    first, second = outcomes
    assert first == second
    assert first["status"] == "completed"
    assert first["texts"][-1] == "The code ran. Output:\ndone\n[made.txt](sandbox:/mnt/data/made.txt)"  # type: ignore[index]
    assert len(first["ids"]) == len(set(first["ids"])) == 8  # type: ignore[arg-type]


UNSAFE = {"EMULATOR_UNSAFE_CODE_EXECUTION": "true"}
"""Cells run unsandboxed, as plain children of the server: a cell can kill its server."""
TAKEN_OVER_SECONDS = 12.0
"""The claim of a killed process lapses within `outside.HELD_SECONDS` (5 s); a runner's sweep finds it within
a second more: the run is taken over well within this (it used to wait out a claim of minutes)."""


@contextlib.contextmanager
def _two_replicas(tmp_path: Path) -> Iterator[tuple[RunningServer, RunningServer]]:
    """Two server processes over one fresh database (a SQLite file, or PostgreSQL when the suite runs on it)."""
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    with extra_server(tmp_path / "one", **UNSAFE) as one, run_server(tmp_path / "two", one.database_url,
                                                                      **UNSAFE) as two:
        yield one, two


def test_a_process_killed_mid_cell_leaves_the_run_to_another_replica_within_seconds(tmp_path: Path) -> None:
    marker = tmp_path / "killed-once"
    code = (f"import os\nif not os.path.exists({str(marker)!r}):\n    open({str(marker)!r}, 'w').close()\n"
            "    os.kill(os.getppid(), 9)\nimport time\ntime.sleep(2)\nprint('second time')")
    key = f"sk-cells-{uuid.uuid4().hex}"
    headers = {"Authorization": f"Bearer {key}", **BETA}
    with _two_replicas(tmp_path) as (one, two):
        with httpx.Client(base_url=one.base_url, headers=headers, timeout=30) as http:
            assistant = http.post("/assistants", json={"model": "gpt-4o",
                                                       "tools": [{"type": "code_interpreter"}]}).json()["id"]
            thread = http.post("/threads", json={"messages": [{"role": "user", "content": _fenced(code)}]}).json()
            created = http.post(f"/threads/{thread['id']}/runs", json={"assistant_id": assistant})
            assert created.status_code == 200, created.text
        run_id = created.json()["id"]
        died_at = _wait_for_a_death(one, two)
        alive = two if one.process.poll() is not None else one
        with httpx.Client(base_url=alive.base_url, headers=headers, timeout=30) as http:
            while time.monotonic() - died_at < TAKEN_OVER_SECONDS:
                started = time.monotonic()
                run = http.get(f"/threads/{thread['id']}/runs/{run_id}").json()
                assert time.monotonic() - started < 1.0, "a read leaves the resumed cell to the runner"
                if run["status"] not in ("queued", "in_progress"):
                    break
                time.sleep(0.2)
            assert (run["status"], run["last_error"]) == ("completed", None), run
            steps = http.get(f"/threads/{thread['id']}/runs/{run_id}/steps", params={"order": "asc"}).json()
        outputs = steps["data"][0]["step_details"]["tool_calls"][0]["code_interpreter"]["outputs"]
        assert outputs == [{"type": "logs", "logs": "second time\n"}]
        assert alive.process.poll() is None


def _wait_for_a_death(one: RunningServer, two: RunningServer) -> float:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if one.process.poll() is not None or two.process.poll() is not None:
            return time.monotonic()
        time.sleep(0.05)
    raise AssertionError("the cell did not kill the server that ran it")
