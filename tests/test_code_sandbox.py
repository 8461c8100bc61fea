"""code_interpreter in its sandbox: what a cell cannot reach, the limits that end it, and sessions per thread.

Every case is a user message's fenced code block run by the stub model, over HTTP through the SDK, against a
server of this module's own (an 8 s cell timeout keeps the suite fast; the default is 120 s). Each escape fails
inside the cell, the server keeps serving, and the run completes with the cell's error in its logs.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import OpenAI
from sqlalchemy.engine import make_url

from emulator import limits
from tests.extra_server import extra_server
from tests.server import RunningServer

TIMEOUT_SECONDS = 8
_POSTGRES_PORT = 5432


@pytest.fixture(scope="module")
def sandboxed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data_dir = tmp_path_factory.mktemp("sandboxed")
    with extra_server(data_dir, EMULATOR_CODE_INTERPRETER_TIMEOUT_SECONDS=str(TIMEOUT_SECONDS)) as running:
        yield running


@pytest.fixture
def sdk(sandboxed: RunningServer) -> OpenAI:
    return OpenAI(base_url=sandboxed.base_url, api_key=f"sk-test-{uuid.uuid4().hex}", max_retries=0)


class Thread:
    """One thread of one assistant with the code_interpreter tool; `cell` runs a code block as a new run."""

    def __init__(self, client: OpenAI, file_ids: list[str] | None = None) -> None:
        self.client = client
        self.assistant = client.beta.assistants.create(model="gpt-4o", tools=[{"type": "code_interpreter"}])
        self.thread = client.beta.threads.create(
            tool_resources={"code_interpreter": {"file_ids": file_ids or []}}
        )

    def cell(self, code: str) -> str:
        """The cell's logs; the run must complete."""
        self.client.beta.threads.messages.create(self.thread.id, role="user", content=f"Run:\n```python\n{code}\n```")
        run = self.client.beta.threads.runs.create_and_poll(thread_id=self.thread.id, assistant_id=self.assistant.id)
        assert run.status == "completed", run.last_error
        return "".join(
            output.logs for output in self.call(run.id).code_interpreter.outputs if output.type == "logs"
        )

    def call(self, run_id: str) -> Any:
        steps = self.client.beta.threads.runs.steps.list(run_id=run_id, thread_id=self.thread.id, order="asc")
        return steps.data[0].step_details.tool_calls[0]  # type: ignore[union-attr]


def _serving(server: RunningServer) -> bool:
    return server.process.poll() is None and httpx.get(f"{server.root_url}/_emulator/health").status_code == 200


def _probe(paths: list[str], action: str) -> str:
    """Code that tries `action` (`read`, `list`, `write`) on each path and prints one JSON line per path."""
    return (
        "import json, os\n"
        f"for path in {paths!r}:\n"
        "    try:\n"
        f"        if {action!r} == 'read':\n"
        "            result = open(path, 'rb').read(64).hex()\n"
        f"        elif {action!r} == 'list':\n"
        "            result = sorted(os.listdir(path))\n"
        "        else:\n"
        "            result = open(path, 'w').write('escaped')\n"
        "    except OSError as error:\n"
        "        result = 'refused: ' + type(error).__name__\n"
        "    print(json.dumps([path, result]))"
    )


def _results(logs: str) -> dict[str, Any]:
    return dict(json.loads(line) for line in logs.splitlines() if line.startswith("["))


def test_the_servers_database_and_data_dir_are_not_there(sdk: OpenAI, sandboxed: RunningServer) -> None:
    data_dir = str(sandboxed.data_dir)
    secret = sdk.files.create(file=("secret.txt", b"tenant secret"), purpose="assistants")
    stored = [str(path) for path in (sandboxed.data_dir / "files").rglob("*") if path.is_file()]
    database = make_url(sandboxed.database_url).database if sandboxed.database_url.startswith("sqlite") else None
    readable = [*stored[:3], *([database] if database else [])]
    thread = Thread(sdk)
    listed = _results(thread.cell(_probe([data_dir, f"{data_dir}/files", "/root", "/home"], "list")))
    read = _results(thread.cell(_probe(readable, "read")))
    assert secret.id and readable
    assert all(str(result).startswith("refused: FileNotFoundError") for result in listed.values()), listed
    assert all(str(result).startswith("refused: FileNotFoundError") for result in read.values()), read
    assert _serving(sandboxed)


def test_no_host_path_in_the_sandboxs_command_lines_and_environments(sdk: OpenAI, sandboxed: RunningServer) -> None:
    """The Python installation is shown at /opt (not under /root), bwrap's arguments are not on its command line."""
    code = (
        "import os, sys\nseen = []\n"
        "for pid in [p for p in os.listdir('/proc') if p.isdigit()]:\n"
        "    for name in ('cmdline', 'environ'):\n"
        "        try:\n"
        "            seen.append(open(f'/proc/{pid}/{name}', 'rb').read().decode('utf-8', 'replace'))\n"
        "        except OSError:\n"
        "            pass\n"
        "print(len(seen), sys.executable)\nprint(repr(''.join(seen)))"
    )
    counted, everything = Thread(sdk).cell(code).splitlines()
    host_paths = {str(sandboxed.data_dir), str(Path(sys.base_prefix).resolve()), str(Path(sys.prefix).resolve()),
                  "/root", "/home"}
    assert int(counted.split()[0]) >= 3 and counted.split()[1].startswith("/opt/"), counted
    assert not [path for path in host_paths if path in eval(everything)], everything


def test_another_threads_session_files_are_not_there(sdk: OpenAI, sandboxed: RunningServer) -> None:
    """Searched everywhere a cell may write or the server may put files; not in the (read-only) Python."""
    token = uuid.uuid4().hex
    given = sdk.files.create(file=("mine.txt", token.encode()), purpose="assistants")
    owner = Thread(sdk, [given.id])
    assert owner.cell("print(open('/mnt/data/mine.txt').read())\n_ = open('/mnt/data/made.txt', 'w').write("
                      f"'x' + {token!r})") == f"{token}\n"
    search = (
        "import os\nfound = []\n"
        f"for top in ['/mnt', '/tmp', '/opt', '/etc', '/var', '/srv', '/home', {str(sandboxed.data_dir)!r}]:\n"
        "    for folder, dirs, names in os.walk(top):\n"
        "        dirs[:] = [name for name in dirs if os.path.join(folder, name) not in ('/opt/python', '/opt/venv')]\n"
        "        for name in names:\n"
        "            try:\n"
        f"                if {token!r}.encode() in open(os.path.join(folder, name), 'rb').read(1 << 20):\n"
        "                    found.append(os.path.join(folder, name))\n"
        "            except OSError:\n"
        "                pass\n"
        "print(sorted(set(found)), sorted(os.listdir('/mnt/data')))"
    )
    assert Thread(sdk).cell(search) == "[] []\n"


def test_the_servers_environment_is_not_there(sdk: OpenAI) -> None:
    code = (
        "import os\nprint(sorted(os.environ))\nleaks = []\n"
        "for pid in [p for p in os.listdir('/proc') if p.isdigit()] + [str(os.getppid())]:\n"
        "    try:\n"
        "        leaks += [pid] if b'EMULATOR_' in open(f'/proc/{pid}/environ', 'rb').read() else []\n"
        "    except OSError:\n"
        "        pass\n"
        "print('leaks', leaks)"
    )
    names, leaks = Thread(sdk).cell(code).splitlines()
    assert set(eval(names)) <= {"PATH", "HOME", "TMPDIR", "LANG", "MPLBACKEND", "MPLCONFIGDIR", "OPENBLAS_NUM_THREADS",
                                "OMP_NUM_THREADS", "MKL_NUM_THREADS", "PWD", "LC_CTYPE", "LD_LIBRARY_PATH"}
    assert leaks == "leaks []"


def test_no_network_not_postgresql_nor_the_emulator(sdk: OpenAI, sandboxed: RunningServer) -> None:
    port = httpx.URL(sandboxed.root_url).port
    code = (
        "import socket\n"
        f"for port in ({_POSTGRES_PORT}, {port}):\n"
        "    try:\n"
        "        socket.create_connection(('127.0.0.1', port), timeout=3).close()\n"
        "        print(port, 'connected')\n"
        "    except OSError as error:\n"
        "        print(port, type(error).__name__)"
    )
    logs = Thread(sdk).cell(code)
    assert logs == f"{_POSTGRES_PORT} ConnectionRefusedError\n{port} ConnectionRefusedError\n"
    assert _serving(sandboxed)


def test_only_mnt_data_and_tmp_are_writable(sdk: OpenAI, sandboxed: RunningServer) -> None:
    name = f"escape-{uuid.uuid4().hex}.txt"
    outside = [f"/{name}", f"/usr/{name}", f"/etc/{name}", str(sandboxed.data_dir / name), f"/root/{name}"]
    try:
        results = _results(Thread(sdk).cell(_probe([*outside, f"/mnt/data/{name}", f"/tmp/{name}"], "write")))
        assert all(str(results[path]).startswith("refused: ") for path in outside), results
        assert results[f"/mnt/data/{name}"] == results[f"/tmp/{name}"] == len("escaped")
        assert not any(Path(path).exists() for path in outside)
    finally:
        for path in outside:
            if Path(path).is_file():
                os.remove(path)


def test_a_fork_bomb_ends_in_the_cell(sdk: OpenAI, sandboxed: RunningServer) -> None:
    thread = Thread(sdk)
    logs = thread.cell("import os\nwhile True:\n    os.fork()")
    assert "BlockingIOError: [Errno 11] Resource temporarily unavailable" in logs
    assert thread.cell("print('still here')") == "still here\n"
    assert _serving(sandboxed)


FOUR_CHILDREN_OF_300_MB = (
    "import os, time\npids = []\n"
    "for _ in range(4):\n"
    "    pid = os.fork()\n"
    "    if pid == 0:\n"
    "        block = b'x' * (300 * 2 ** 20)\n"
    "        time.sleep(2)\n"
    "        os._exit(0)\n"
    "    pids.append(pid)\n"
    "print('exit codes', [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in pids])"
)


def test_a_sessions_processes_share_its_512_mb(sdk: OpenAI, sandboxed: RunningServer) -> None:
    thread = Thread(sdk)
    logs = thread.cell(FOUR_CHILDREN_OF_300_MB)
    assert "exit codes [0, 0, 0, 0]" not in logs, logs
    assert "ran out of memory" in logs and ("-9" in logs or "session" in logs), logs
    assert thread.cell("print('still serving')") == "still serving\n"
    assert _serving(sandboxed)


def test_a_huge_output_is_truncated_and_the_session_lives_on(sdk: OpenAI) -> None:
    thread = Thread(sdk)
    thread.cell("kept = 'yes'")
    logs = thread.cell("line = 'x' * (2 ** 20 - 1)\nfor _ in range(300):\n    print(line)\nprint('the end')")
    cap = limits.CODE_INTERPRETER_MAX_LOG_CHARS
    note = f"[output truncated: only its last {cap} characters are shown ({300 * 2 ** 20 + 8} bytes were printed)]\n"
    assert logs.startswith(note) and logs.endswith("x\nthe end\n") and len(logs) == len(note) + cap, logs[:200]
    assert thread.cell("print(kept)") == "yes\n"


def test_disk_use_is_bounded_during_the_cell(sdk: OpenAI) -> None:
    """Five sparse files of 500 MB (2.5 GB by their size) end the session while the cell still runs."""
    thread = Thread(sdk)
    logs = thread.cell("import time\nfor index in range(5):\n"
                       "    with open(f'/mnt/data/big{index}', 'wb') as out:\n        out.truncate(500 * 2 ** 20)\n"
                       "time.sleep(4)\nprint('after')")
    assert logs.startswith("[/mnt/data holds more than 2 GB: the session was reset and its files removed]"), logs
    assert "after" not in logs
    assert thread.cell("import os\nprint(os.listdir('/mnt/data'))") == "[]\n"


def test_disk_use_past_the_walks_depth_is_counted(sdk: OpenAI) -> None:
    """The same files 70 directory levels deep (past the 64 levels the server walks for output files)."""
    thread = Thread(sdk)
    logs = thread.cell("import os, time\nos.makedirs('/mnt/data/' + '/'.join(['d'] * 70))\n"
                       "os.chdir('/mnt/data/' + '/'.join(['d'] * 70))\nfor index in range(5):\n"
                       "    with open(f'big{index}', 'wb') as out:\n        out.truncate(500 * 2 ** 20)\n"
                       "time.sleep(4)\nprint('after')")
    assert logs.startswith("[/mnt/data holds more than 2 GB: the session was reset and its files removed]"), logs
    assert "after" not in logs


def test_a_file_in_a_subdirectory_keeps_its_path(sdk: OpenAI) -> None:
    thread = Thread(sdk)
    thread.cell("import os\nos.makedirs('/mnt/data/sub/deeper')\n"
                "_ = open('/mnt/data/sub/deeper/x.csv', 'w').write('a,b')")
    message = sdk.beta.threads.messages.list(thread.thread.id, limit=1).data[0]
    text = message.content[0].text  # type: ignore[union-attr]
    [annotation] = text.annotations
    assert annotation.text == "sandbox:/mnt/data/sub/deeper/x.csv"
    made = sdk.files.retrieve(annotation.file_path.file_id)  # type: ignore[union-attr]
    assert made.filename == "sub/deeper/x.csv" and sdk.files.content(made.id).read() == b"a,b"


def test_two_gigabytes_is_a_memory_error_and_the_session_lives_on(sdk: OpenAI) -> None:
    thread = Thread(sdk)
    thread.cell("kept = 'yes'")
    assert thread.cell("data = bytearray(2 * 1024 ** 3)").rstrip().endswith("MemoryError")
    assert thread.cell("print(kept)") == "yes\n"


def test_a_cell_past_the_time_limit_ends_and_its_session_with_it(sdk: OpenAI, sandboxed: RunningServer) -> None:
    thread = Thread(sdk)
    thread.cell("before = 1")
    logs = thread.cell("import time\nstart = time.time()\nwhile time.time() - start < 200:\n    pass")
    assert logs == f"Execution timed out after {TIMEOUT_SECONDS} seconds; the session was reset."
    assert thread.cell("print('before' in globals())") == "False\n"
    assert _serving(sandboxed)


def test_a_cell_cannot_kill_the_server(sdk: OpenAI, sandboxed: RunningServer) -> None:
    thread = Thread(sdk)
    logs = thread.cell("import os\nos.kill(os.getppid(), 9)\nprint('after the kill')")
    assert logs.rstrip().endswith("PermissionError: [Errno 1] Operation not permitted"), logs
    assert _serving(sandboxed)
    assert thread.cell("print(1 + 1)") == "2\n"


def test_a_session_keeps_its_variables_for_an_hour_of_emulator_time(sdk: OpenAI, sandboxed: RunningServer) -> None:
    thread = Thread(sdk)
    assert thread.cell("import math\nanswer = 41\n_ = open('/mnt/data/kept.txt', 'w').write('k')") == ""
    assert thread.cell("print(answer + 1, math.pi > 3, open('/mnt/data/kept.txt').read())") == "42 True k\n"
    other = Thread(sdk)
    assert other.cell("print('answer' in globals())") == "False\n"
    httpx.post(
        f"{sandboxed.root_url}/_emulator/clock/advance", json={"seconds": 3600},
        headers={"Authorization": f"Bearer {sdk.api_key}"},
    ).raise_for_status()
    code = "import os\nprint('answer' in globals(), os.path.exists('/mnt/data/kept.txt'))"
    assert thread.cell(code) == "False False\n"


def test_sessions_are_billed_once_each(sdk: OpenAI, sandboxed: RunningServer) -> None:
    thread = Thread(sdk)
    for _ in range(3):
        thread.cell("print(1)")
    Thread(sdk).cell("print(2)")
    report = httpx.get(f"{sandboxed.root_url}/_emulator/usage", headers={"Authorization": f"Bearer {sdk.api_key}"})
    assert (report.json()["runs"], report.json()["code_interpreter_sessions"]) == (4, 2)
    assert report.json()["code_interpreter_cost_usd"] == pytest.approx(0.06)


def test_a_plot_comes_back_as_an_image(sdk: OpenAI) -> None:
    thread = Thread(sdk)
    thread.cell("import matplotlib.pyplot as plt\nplt.plot([1, 4, 9])\nplt.title('squares')\nplt.show()")
    run = sdk.beta.threads.runs.list(thread.thread.id, limit=1).data[0]
    outputs = thread.call(run.id).code_interpreter.outputs
    images = [output.image.file_id for output in outputs if output.type == "image"]
    assert len(images) == 1, outputs
    assert sdk.files.content(images[0]).read().startswith(b"\x89PNG\r\n\x1a\n")
    message = sdk.beta.threads.messages.list(thread.thread.id, limit=1).data[0]
    assert [part.type for part in message.content] == ["text", "image_file"]
    assert message.content[1].image_file.file_id == images[0]  # type: ignore[union-attr]


@pytest.mark.parametrize("name", ["..", ".", "/", "a\x00b"])
def test_an_input_file_that_is_no_file_name_is_placed_under_a_safe_one(sdk: OpenAI, name: str) -> None:
    given = sdk.files.create(file=(name, b"odd name"), purpose="assistants")
    thread = Thread(sdk, [given.id])
    listing = thread.cell("import os\nprint(sorted(os.listdir('/mnt/data')))")
    [placed] = eval(listing)
    assert placed not in ("", ".", "..") and "/" not in placed and "\x00" not in placed
    assert thread.cell(f"print(open('/mnt/data/{placed}').read())") == "odd name\n"
    assert sdk.beta.threads.runs.list(thread.thread.id).data[0].status == "completed"
