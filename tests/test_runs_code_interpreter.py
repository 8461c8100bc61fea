"""The code_interpreter tool inside runs: cells run with the run's files, outputs come back as files."""

from __future__ import annotations

import base64

import httpx
import pytest
from openai import AssistantEventHandler, OpenAI
from openai.types.beta.threads import Message
from openai.types.beta.threads.runs import RunStep

from emulator import limits
from tests.oracle import conforms

PIXEL_PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8ffff3f0005fe02fe"
        "a7d6a4b00000000049454e44ae426082"
    )
).decode()


def _fenced(code: str, words: str = "Please run this") -> str:
    return f"{words}:\n```python\n{code}\n```"


def _run(client: OpenAI, content: str, *, file_ids: list[str] | None = None, **run: object) -> tuple[str, str]:
    assistant = client.beta.assistants.create(
        model="gpt-4o",
        tools=[{"type": "code_interpreter"}],
        tool_resources={"code_interpreter": {"file_ids": file_ids or []}},
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": content}])
    result = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id, **run)  # type: ignore[arg-type]
    assert result.status == "completed", result.last_error
    return thread.id, result.id


def _code_call(client: OpenAI, thread_id: str, run_id: str) -> object:
    steps = list(client.beta.threads.runs.steps.list(run_id=run_id, thread_id=thread_id, order="asc"))
    assert [step.type for step in steps] == ["tool_calls", "message_creation"]
    return steps[0].step_details.tool_calls[0]  # type: ignore[union-attr]


def test_a_fenced_cell_runs_and_its_output_is_the_answer(client: OpenAI, http: httpx.Client) -> None:
    thread_id, run_id = _run(client, _fenced("x = 6 * 7\nprint('x is', x)\nx + 1"))
    call = _code_call(client, thread_id, run_id)
    assert call.type == "code_interpreter" and call.id.startswith("call_")  # type: ignore[attr-defined]
    assert call.code_interpreter.input == "x = 6 * 7\nprint('x is', x)\nx + 1\n"  # type: ignore[attr-defined]
    assert [(o.type, o.logs) for o in call.code_interpreter.outputs] == [("logs", "x is 42\n43\n")]  # type: ignore[attr-defined]
    raw = http.get(f"/threads/{thread_id}/runs/{run_id}/steps", params={"order": "asc"}).json()["data"][0]
    conforms(raw, RunStep, "RunStepObject")
    text = client.beta.threads.messages.list(thread_id, limit=1).data[0].content[0].text  # type: ignore[union-attr]
    assert text.value == "The code ran. Output:\nx is 42\n43"


def test_cells_read_the_run_files_and_files_they_make_come_back(client: OpenAI, http: httpx.Client) -> None:
    data = client.files.create(file=("nums.csv", b"n\n1\n2\n3\n"), purpose="assistants")
    code = (
        "import csv\ntotal = sum(int(row['n']) for row in csv.DictReader(open('nums.csv')))\n"
        "open('total.txt', 'w').write(str(total))\n"
        f"open('dot.png', 'wb').write(__import__('base64').b64decode('{PIXEL_PNG}'))\nprint(total)"
    )
    thread_id, run_id = _run(client, _fenced(code), file_ids=[data.id])
    raw = http.get(f"/threads/{thread_id}/messages", params={"limit": 1}).json()["data"][0]
    message = conforms(raw, Message, "MessageObject")
    text_part, image_part = message.content
    text = text_part.text  # type: ignore[union-attr]
    assert text.value == "The code ran. Output:\n6\n[total.txt](sandbox:/mnt/data/total.txt)"
    [annotation] = text.annotations
    assert annotation.type == "file_path" and annotation.text == "sandbox:/mnt/data/total.txt"
    assert text.value[annotation.start_index : annotation.end_index] == annotation.text
    made = client.files.retrieve(annotation.file_path.file_id)  # type: ignore[union-attr]
    assert (made.filename, made.purpose) == ("total.txt", "assistants_output")
    assert client.files.content(made.id).read() == b"6"
    assert image_part.type == "image_file"
    image_id = image_part.image_file.file_id  # type: ignore[union-attr]
    assert client.files.content(image_id).read().startswith(b"\x89PNG")
    outputs = _code_call(client, thread_id, run_id).code_interpreter.outputs  # type: ignore[attr-defined]
    assert [o.type for o in outputs] == ["logs", "image"] and outputs[1].image.file_id == image_id


def test_message_attachments_for_code_interpreter_are_in_the_cell(client: OpenAI) -> None:
    attached = client.files.create(file=("words.txt", b"alpha beta"), purpose="assistants")
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[{"type": "code_interpreter"}])
    thread = client.beta.threads.create(
        messages=[
            {
                "role": "user",
                "content": _fenced("print(open('words.txt').read().split())"),
                "attachments": [{"file_id": attached.id, "tools": [{"type": "code_interpreter"}]}],
            }
        ]
    )
    client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    text = client.beta.threads.messages.list(thread.id, limit=1).data[0].content[0].text  # type: ignore[union-attr]
    assert text.value == "The code ran. Output:\n['alpha', 'beta']"


def test_errors_and_the_memory_limit_show_in_the_logs(client: OpenAI) -> None:
    thread_id, run_id = _run(client, _fenced("1 / 0"))
    logs = _code_call(client, thread_id, run_id).code_interpreter.outputs[0].logs  # type: ignore[attr-defined]
    assert logs.rstrip().endswith("ZeroDivisionError: division by zero")
    too_much = limits.CODE_INTERPRETER_MEMORY_BYTES * 2
    thread_id, run_id = _run(client, _fenced(f"data = bytearray({too_much})"))
    logs = _code_call(client, thread_id, run_id).code_interpreter.outputs[0].logs  # type: ignore[attr-defined]
    assert logs.rstrip().endswith("MemoryError")


def test_forced_tool_choice_and_scripted_code(client: OpenAI, control: httpx.Client) -> None:
    thread_id, run_id = _run(client, "hello there", tool_choice={"type": "code_interpreter"})
    call = _code_call(client, thread_id, run_id)
    assert call.code_interpreter.input == "print('hello there')"  # type: ignore[attr-defined]
    control.post("/script", json={"turns": [{"type": "code_interpreter", "code": "print(2 ** 10)"}]}).raise_for_status()
    thread_id, run_id = _run(client, "no code here")
    logs = _code_call(client, thread_id, run_id).code_interpreter.outputs[0].logs  # type: ignore[attr-defined]
    assert logs == "1024\n"


def test_without_a_cell_or_the_tool_no_code_runs(client: OpenAI) -> None:
    thread_id, run_id = _run(client, "just talk")
    steps = list(client.beta.threads.runs.steps.list(run_id=run_id, thread_id=thread_id))
    assert [step.type for step in steps] == ["message_creation"]


def test_a_streamed_code_run_and_the_sessions_in_the_usage_report(client: OpenAI, control: httpx.Client) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[{"type": "code_interpreter"}])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": _fenced("print('streamed')")}])
    seen: list[tuple[str, object]] = []

    class Recorder(AssistantEventHandler):
        def on_event(self, event) -> None:  # type: ignore[no-untyped-def]
            seen.append((event.event, event.data))

    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id, event_handler=Recorder()) as s:
        s.until_done()
    names = [name for name, _ in seen]
    assert names[3:7] == [
        "thread.run.step.created",
        "thread.run.step.in_progress",
        "thread.run.step.delta",
        "thread.run.step.completed",
    ]
    delta = seen[5][1].delta.step_details.tool_calls[0]  # type: ignore[attr-defined]
    assert (delta.type, delta.code_interpreter.input) == ("code_interpreter", "print('streamed')\n")
    assert names[-1] == "thread.run.completed"
    report = control.get("/usage").json()
    assert report["code_interpreter_sessions"] == 1
    assert report["code_interpreter_cost_usd"] == pytest.approx(limits.CODE_INTERPRETER_SESSION_USD)
