"""code_interpreter against a hostile cell: what a security probe tried, over HTTP through the SDK.

Each case is a cell that tried to hold the server (a stopped kernel, a deep tree, a flood of files), leave
something running, or break the bookkeeping of its output files; the run must complete, the server must keep
serving, and the thread must still be deletable.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from openai import OpenAI

from emulator import limits
from tests.extra_server import extra_server
from tests.server import RunningServer
from tests.test_code_sandbox import Thread, _serving

TIMEOUT_SECONDS = 5


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data_dir = tmp_path_factory.mktemp("hostile")
    with extra_server(data_dir, EMULATOR_CODE_INTERPRETER_TIMEOUT_SECONDS=str(TIMEOUT_SECONDS)) as running:
        yield running


@pytest.fixture
def sdk(hostile: RunningServer) -> OpenAI:
    return OpenAI(base_url=hostile.base_url, api_key=f"sk-test-{uuid.uuid4().hex}", max_retries=0, timeout=30)


def _cell_within(thread: Thread, code: str, seconds: float) -> str:
    """Like `Thread.cell`, but the run must end within `seconds` (a hung worker would poll forever)."""
    client = thread.client
    client.beta.threads.messages.create(thread.thread.id, role="user", content=f"Run:\n```python\n{code}\n```")
    run = client.beta.threads.runs.create(thread_id=thread.thread.id, assistant_id=thread.assistant.id)
    deadline = time.monotonic() + seconds
    while run.status in ("queued", "in_progress"):
        assert time.monotonic() < deadline, f"the run is still {run.status} after {seconds} s"
        time.sleep(0.3)
        run = client.beta.threads.runs.retrieve(run.id, thread_id=thread.thread.id)
    assert run.status == "completed", run.last_error
    return "".join(output.logs for output in thread.call(run.id).code_interpreter.outputs if output.type == "logs")


def test_a_stopped_kernel_and_a_large_cell_do_not_hold_the_server(sdk: OpenAI, hostile: RunningServer) -> None:
    thread = Thread(sdk)
    thread.cell("import os, signal, threading, time\n"
                "threading.Thread(target=lambda: (time.sleep(0.5), os.kill(os.getpid(), signal.SIGSTOP))).start()")
    time.sleep(1.5)
    padding = "# " + "x" * 200_000
    logs = _cell_within(thread, f"{padding}\nprint('ran')", TIMEOUT_SECONDS + 20)
    assert logs in ("ran\n", f"Execution timed out after {TIMEOUT_SECONDS} seconds; the session was reset.")
    assert _cell_within(thread, "print(6 * 7)", TIMEOUT_SECONDS + 20) == "42\n"
    assert _serving(hostile)


def test_a_thread_left_running_resets_the_session(sdk: OpenAI) -> None:
    thread = Thread(sdk)
    logs = thread.cell("import threading\nkept = 1\n"
                       "def spin():\n    while True:\n        pass\n"
                       "threading.Thread(target=spin, daemon=True).start()\nprint('started')")
    assert logs == "[a thread the cell started was still running after it: the session was reset]\nstarted\n"
    assert thread.cell("print('kept' in globals())") == "False\n"


def test_a_directory_thousands_of_levels_deep_is_harmless(sdk: OpenAI, hostile: RunningServer) -> None:
    thread = Thread(sdk)
    logs = thread.cell("import os\nos.chdir('/mnt/data')\n"
                       "for _ in range(1200):\n    os.mkdir('d')\n    os.chdir('d')\n"
                       "open('deep.txt', 'w').write('deep')\n"
                       "open('/mnt/data/top.txt', 'w').write('top')\nprint('made')")
    assert logs.endswith("made\n"), logs
    assert "levels of directories" in logs
    assert [item.filename for item in sdk.files.list(purpose="assistants_output")] == ["top.txt"]
    assert thread.cell("print(open('/mnt/data/top.txt').read())").endswith("top\n")
    assert sdk.beta.threads.delete(thread.thread.id).deleted is True
    assert _serving(hostile)


def test_a_flood_of_files_returns_at_most_the_cap(sdk: OpenAI) -> None:
    count = limits.CODE_INTERPRETER_MAX_OUTPUT_FILES + 50
    thread = Thread(sdk)
    logs = thread.cell(f"for index in range({count}):\n    open(f'/mnt/data/f{{index:04}}.txt', 'w').write('x')")
    assert logs.startswith(f"[50 files were not returned (at most {limits.CODE_INTERPRETER_MAX_OUTPUT_FILES} files")
    assert "f0100.txt, f0101.txt" in logs and "and 30 more]" in logs
    returned = sorted(item.filename for item in sdk.files.list(purpose="assistants_output", limit=10_000))
    assert returned == [f"f{index:04}.txt" for index in range(limits.CODE_INTERPRETER_MAX_OUTPUT_FILES)]


def test_output_file_names_that_are_no_text_are_made_safe(sdk: OpenAI) -> None:
    thread = Thread(sdk)
    logs = thread.cell("open(b'/mnt/data/bad_\\xff\\xfe.txt', 'w').write('b')\n"
                       "open('/mnt/data/evil\\u202etxt.exe\\n', 'w').write('e')\nprint('ok')")
    assert logs == "ok\n"
    returned = sorted(item.filename for item in sdk.files.list(purpose="assistants_output"))
    assert returned == ["bad_??.txt", "evil_txt.exe_"]


def test_children_that_exit_are_reaped(sdk: OpenAI) -> None:
    thread = Thread(sdk)
    thread.cell("import os\nfor _ in range(3):\n    if os.fork() == 0:\n        os._exit(0)")
    zombies = ("import os\nfound = 0\nfor pid in filter(str.isdigit, os.listdir('/proc')):\n"
               "    try:\n        found += 'State:\\tZ' in open(f'/proc/{pid}/status').read()\n"
               "    except OSError:\n        pass\nprint(found)")
    assert thread.cell(zombies) == "0\n"


def test_the_kernel_keyring_and_new_namespaces_are_refused(sdk: OpenAI) -> None:
    thread = Thread(sdk)
    logs = thread.cell(
        "import ctypes, platform, subprocess\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "add_key = {'x86_64': 248, 'aarch64': 217}[platform.machine()]\n"
        "key = libc.syscall(add_key, b'user', b'secret', b'value', 5, -3)\n"
        "print('add_key', key, ctypes.get_errno())\n"
        "nested = subprocess.run(['unshare', '-Ur', 'id', '-u'], capture_output=True, text=True)\n"
        "print('unshare', nested.returncode, nested.stdout.strip() or nested.stderr.strip())"
    )
    assert logs == "add_key -1 1\nunshare 1 unshare: unshare failed: Operation not permitted\n"


def test_a_cell_that_answers_for_itself_does_not_run_on(sdk: OpenAI, hostile: RunningServer) -> None:
    """The cell writes a reply of its own on the kernel's reply pipe and goes on writing files: the server sees
    the kernel is not waiting for the next cell, ends the session, and nothing of the cell runs on."""
    thread = Thread(sdk)
    logs = thread.cell(
        "import json, os, sys, time\nkept = 1\n"
        "os.write(int(sys.argv[7]), (json.dumps({'logs': 'forged', 'images': [], 'threads': 1}) + '\\n').encode())\n"
        "for index in range(100):\n    open(f'/mnt/data/late{index}.txt', 'w').write('x')\n    time.sleep(0.1)"
    )
    assert logs == "[the cell was still running after its kernel answered: the session was reset]\n", logs
    time.sleep(3.5)
    assert thread.cell("import os\nprint('kept' in globals(), os.listdir('/mnt/data'))") == "False []\n"
    assert _serving(hostile)
