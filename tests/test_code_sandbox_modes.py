"""code_interpreter around its sandbox: which mode a server is in, a sandbox that cannot start, the README's
start command, a cell that holds no transaction, and a deleted thread's session."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from tests.extra_server import extra_server
from tests.server import RunningServer, free_port

NO_BWRAP_PATH = "/nonexistent-bin"


def _sdk(server: RunningServer) -> OpenAI:
    return OpenAI(base_url=server.base_url, api_key=f"sk-test-{uuid.uuid4().hex}", max_retries=0)


def _code_run(client: OpenAI, code: str) -> tuple[str, str]:
    """(thread id, run id) of a run that has a code block to run, not yet observed."""
    assistant = client.beta.assistants.create(model="gpt-4o", tools=[{"type": "code_interpreter"}])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": f"Run:\n```python\n{code}\n```"}])
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    return thread.id, run.id


def test_without_namespaces_code_interpreter_fails_the_run_and_says_why(tmp_path: Path) -> None:
    with extra_server(tmp_path, PATH=NO_BWRAP_PATH) as server:
        assert httpx.get(f"{server.root_url}/_emulator/health").json()["code_interpreter"] == "unavailable"
        client = _sdk(server)
        thread_id, run_id = _code_run(client, "print('never')")
        run = client.beta.threads.runs.poll(run_id, thread_id=thread_id)
        assert run.status == "failed"
        assert run.last_error is not None and run.last_error.code == "server_error"
        assert "bubblewrap" in run.last_error.message and "--unsafe-code-execution" in run.last_error.message
        [step] = client.beta.threads.runs.steps.list(run_id, thread_id=thread_id).data
        assert step.status == "failed" and step.last_error is not None and step.last_error.code == "server_error"
        assert client.beta.threads.runs.list(thread_id).data[0].status == "failed"
    log = (tmp_path / "server.log").read_text()
    assert "code_interpreter is disabled" in log and run_id in log


def test_unsafe_mode_is_chosen_loudly_and_keeps_sessions(tmp_path: Path) -> None:
    with extra_server(tmp_path, PATH=NO_BWRAP_PATH, EMULATOR_UNSAFE_CODE_EXECUTION="true") as server:
        assert httpx.get(f"{server.root_url}/_emulator/health").json()["code_interpreter"] == "unsafe"
        client = _sdk(server)
        thread_id, run_id = _code_run(client, "kept = 6 * 7")
        assert client.beta.threads.runs.poll(run_id, thread_id=thread_id).status == "completed"
        assistant_id = client.beta.threads.runs.retrieve(run_id, thread_id=thread_id).assistant_id
        client.beta.threads.messages.create(thread_id, role="user", content="```python\nprint(kept)\n```")
        run = client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id)
        text = client.beta.threads.messages.list(thread_id, limit=1).data[0].content[0].text  # type: ignore[union-attr]
        assert (run.status, text.value) == ("completed", "The code ran. Output:\n42")
    assert "UNSAFE CODE EXECUTION" in (tmp_path / "server.log").read_text()


@pytest.fixture
def readme_server(tmp_path: Path) -> Iterator[str]:
    """`assistants-emulator` as the README starts it: in a fresh directory, no --data-dir, no EMULATOR_* set."""
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    port = free_port()
    script = Path(sys.executable).with_name("assistants-emulator")
    environment = {name: value for name, value in os.environ.items() if not name.startswith("EMULATOR_")}
    with (tmp_path / "server.log").open("wb") as log:
        process = subprocess.Popen([str(script), "--port", str(port)], cwd=fresh, env=environment, stdout=log,
                                   stderr=log)
        root = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{root}/_emulator/health").status_code == 200:
                        break
                except httpx.TransportError:
                    assert time.monotonic() < deadline and process.poll() is None, (tmp_path / "server.log").read_text()
                    time.sleep(0.05)
            yield root
        finally:
            process.terminate()
            process.wait(timeout=10)


def test_the_readme_start_command_runs_code(readme_server: str, tmp_path: Path) -> None:
    client = OpenAI(base_url=f"{readme_server}/v1", api_key="sk-readme", max_retries=0)
    thread_id, run_id = _code_run(client, "open('made.txt', 'w').write('ok')\nprint(6 * 7)")
    run = client.beta.threads.runs.poll(run_id, thread_id=thread_id)
    assert run.status == "completed", run.last_error
    text = client.beta.threads.messages.list(thread_id, limit=1).data[0].content[0].text  # type: ignore[union-attr]
    assert text.value == "The code ran. Output:\n42\n[made.txt](sandbox:/mnt/data/made.txt)"
    assert (tmp_path / "fresh" / "emulator-data" / "emulator.sqlite3").is_file()


def test_a_running_cell_holds_no_transaction_and_a_cancel_meanwhile_wins(client: OpenAI, data_dir: Path) -> None:
    marker = f"started-{uuid.uuid4().hex}"
    code = f"import time\n_ = open('{marker}', 'w').write('x')\ntime.sleep(6)\nprint('slept')"
    thread_id, run_id = _code_run(client, code)
    finished: list[str] = []
    poller = threading.Thread(
        target=lambda: finished.append(client.beta.threads.runs.retrieve(run_id, thread_id=thread_id).status)
    )
    poller.start()
    deadline = time.monotonic() + 30
    while not list((data_dir / "sandbox").rglob(marker)):
        assert time.monotonic() < deadline, "the cell never started"
        time.sleep(0.05)
    started = time.monotonic()
    cancelling = client.beta.threads.runs.cancel(run_id, thread_id=thread_id)
    took = time.monotonic() - started
    poller.join(30)
    assert (cancelling.status, took < 3) == ("cancelling", True), took
    assert finished == ["in_progress"], "a read leaves the cell to the runner: it answers at once"
    ended = client.beta.threads.runs.poll(run_id, thread_id=thread_id, poll_interval_ms=100)
    assert ended.status == "cancelled"
    [step] = client.beta.threads.runs.steps.list(run_id, thread_id=thread_id).data
    assert step.status == "cancelled"


def test_deleting_a_thread_ends_its_session(client: OpenAI, data_dir: Path) -> None:
    token = uuid.uuid4().hex
    thread_id, run_id = _code_run(client, f"_ = open('/mnt/data/token.txt', 'w').write({token!r})")
    assert client.beta.threads.runs.poll(run_id, thread_id=thread_id).status == "completed"
    [session_file] = [path for path in (data_dir / "sandbox").glob("*/*/data/token.txt") if path.read_text() == token]
    client.beta.threads.delete(thread_id)
    assert not session_file.parent.parent.exists()


def _logs_of_first_call(client: OpenAI, thread_id: str, run_id: str) -> list[str]:
    step = client.beta.threads.runs.steps.list(run_id, thread_id=thread_id, order="asc").data[0]
    [call] = step.step_details.tool_calls  # type: ignore[union-attr]
    return [output.logs for output in call.code_interpreter.outputs if output.type == "logs"]  # type: ignore[union-attr]


def test_a_cell_whose_read_then_fails_keeps_its_result_and_runs_once(client: OpenAI, http: httpx.Client) -> None:
    """The read that ran the cell answers 404 (an unknown step): the cell's result stays, it is not run again."""
    code = "with open('/mnt/data/runs.txt', 'a') as out:\n    out.write('ran ')\nprint('done')"
    thread_id, run_id = _code_run(client, code)
    missing = http.get(f"/threads/{thread_id}/runs/{run_id}/steps/step_unknown")
    assert (missing.status_code, missing.json()["error"]["type"]) == (404, "invalid_request_error"), missing.text
    deadline = time.monotonic() + 20
    while (run := client.beta.threads.runs.retrieve(run_id, thread_id=thread_id)).status != "completed":
        assert run.status in {"queued", "in_progress"} and time.monotonic() < deadline, (run.status, run.last_error)
        time.sleep(0.2)
    assert _logs_of_first_call(client, thread_id, run_id) == ["done\n"]
    count = "Run:\n```python\nprint(open('/mnt/data/runs.txt').read())\n```"
    again = client.beta.threads.runs.create_and_poll(
        thread_id=thread_id, assistant_id=run.assistant_id, additional_messages=[{"role": "user", "content": count}]
    )
    assert again.status == "completed", again.last_error
    assert _logs_of_first_call(client, thread_id, again.id) == ["ran \n"]


def test_a_runs_moves_are_logged_once_each_when_committed_and_not_when_a_failed_read_rolled_them_back(
    tmp_path: Path,
) -> None:
    """A read that fails (a 404 for a step) after moving the run rolls the move back, and logs nothing of it; the
    runner makes the move again and logs it once. (Before code cells were the runner's, that read committed the
    move itself before running the cell.)"""
    with extra_server(tmp_path, EMULATOR_LOG_LEVEL="INFO") as server:
        client = _sdk(server)
        thread_id, run_id = _code_run(client, "print(1)")
        missing = httpx.get(f"{server.base_url}/threads/{thread_id}/runs/{run_id}/steps/step_unknown",
                            headers={"Authorization": f"Bearer {client.api_key}", "OpenAI-Beta": "assistants=v2"})
        assert missing.status_code == 404, missing.text
        assert client.beta.threads.runs.poll(run_id, thread_id=thread_id, poll_interval_ms=100).status == "completed"
    log = (tmp_path / "server.log").read_text()
    assert log.count(f"run {run_id} on thread {thread_id}: queued -> in_progress") == 1, log
    assert log.count(f"run {run_id} on thread {thread_id}: in_progress -> completed") == 1, log


def _cancel_while_the_cell_runs(client: OpenAI, data_dir: Path, thread_id: str, assistant_id: str) -> None:
    marker = f"started-{uuid.uuid4().hex}"
    code = f"import time\n_ = open('{marker}', 'w').write('x')\ntime.sleep(4)"
    run = client.beta.threads.runs.create(
        thread_id=thread_id, assistant_id=assistant_id,
        additional_messages=[{"role": "user", "content": f"Run:\n```python\n{code}\n```"}],
    )
    poller = threading.Thread(target=lambda: client.beta.threads.runs.retrieve(run.id, thread_id=thread_id))
    poller.start()
    deadline = time.monotonic() + 30
    while not list((data_dir / "sandbox").rglob(marker)):
        assert time.monotonic() < deadline, "the cell never started"
        time.sleep(0.05)
    client.beta.threads.runs.cancel(run.id, thread_id=thread_id)
    poller.join(30)
    assert client.beta.threads.runs.poll(run.id, thread_id=thread_id, poll_interval_ms=100).status == "cancelled"


def test_a_run_cancelled_during_its_cell_is_billed_the_session_it_started_only(
    client: OpenAI, control: httpx.Client, data_dir: Path
) -> None:
    thread_id, run_id = _code_run(client, "kept = 1")
    assert client.beta.threads.runs.poll(run_id, thread_id=thread_id).status == "completed"
    assistant_id = client.beta.threads.runs.retrieve(run_id, thread_id=thread_id).assistant_id
    _cancel_while_the_cell_runs(client, data_dir, thread_id, assistant_id)  # reuses the thread's session
    _cancel_while_the_cell_runs(client, data_dir, client.beta.threads.create().id, assistant_id)  # starts one
    report = control.get("/usage").json()
    assert (report["runs"], report["code_interpreter_sessions"]) == (3, 2), report


def _process_directory(pid: int, *, namespace: int | None = None) -> str:
    """The sandbox directory name of process `pid` of this machine (boot, PID namespace, pid, start time)."""
    boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    namespace = namespace if namespace is not None else os.stat("/proc/self/ns/pid").st_ino
    stat = Path(f"/proc/{pid}/stat").read_text() if Path(f"/proc/{pid}").exists() else ") x" + " 0" * 20
    return f"proc-{boot}-{namespace}-{pid}-{stat.rpartition(')')[2].split()[19]}"


def test_a_server_removes_the_session_directories_of_gone_processes_only(tmp_path: Path) -> None:
    """Replicas share the data dir, and in containers their host name and pid: a directory is judged gone only
    by a process of the same machine boot and PID namespace."""
    ended = subprocess.Popen(["true"])
    ended.wait()
    root = tmp_path / "sandbox"
    gone, alive = root / _process_directory(ended.pid), root / _process_directory(os.getpid())
    other_container = root / _process_directory(ended.pid, namespace=1)
    for directory in (gone, alive, other_container):
        (directory / "cisession_x" / "data").mkdir(parents=True)
    with extra_server(tmp_path):
        pass
    assert (gone.exists(), alive.exists(), other_container.exists()) == (False, True, True)
