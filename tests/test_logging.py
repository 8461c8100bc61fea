"""What the server logs: a line per request (tenant digest, method, path, status, milliseconds), injected faults
marked, each run state change with its run and thread ids; `EMULATOR_LOG_LEVEL` / `--log-level` choose how much."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
from openai import OpenAI

from emulator.context import tenant_of
from tests.conftest import BETA
from tests.server import run_server

KEY = "sk-log-secret-0123456789"


def _log_lines(data_dir: Path, pattern: str, at_least: int = 1) -> list[str]:
    """The server's log lines matching `pattern`, waiting briefly: a line is written after the response."""
    deadline = time.monotonic() + 5
    while True:
        lines = [line for line in (data_dir / "server.log").read_text().splitlines() if re.search(pattern, line)]
        if len(lines) >= at_least or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def test_info_logs_each_request_each_fault_and_each_run_state_change(tmp_path: Path) -> None:
    digest = tenant_of(KEY)[:8]
    with run_server(tmp_path, EMULATOR_LOG_LEVEL="INFO") as running:
        client = OpenAI(base_url=running.base_url, api_key=KEY, max_retries=0)
        assistant = client.beta.assistants.create(model="gpt-4o")
        run = client.beta.threads.create_and_run_poll(
            assistant_id=assistant.id, thread={"messages": [{"role": "user", "content": "hello"}]}
        )
        assert run.status == "completed"
        headers = {"Authorization": f"Bearer {KEY}", **BETA}
        missing = httpx.get(f"{running.base_url}/threads/thread_missing?limit=3", headers=headers)
        assert missing.status_code == 404
        rule = httpx.post(
            f"{running.root_url}/_emulator/faults", headers=headers,
            json={"rules": [{"match": {"operation": "createThread"}, "effect": {"type": "error", "status": 503}}]},
        )
        assert rule.status_code == 200, rule.text
        rule_id = rule.json()["data"][0]["id"]
        assert httpx.post(f"{running.base_url}/threads", json={}, headers=headers).status_code == 503

        line = r" INFO +emulator\.access: "
        created = _log_lines(tmp_path, line + rf"{digest} POST /v1/assistants 200 \d+\.\dms$")
        assert len(created) == 1, (tmp_path / "server.log").read_text()
        assert _log_lines(tmp_path, line + rf"{digest} GET /v1/threads/thread_missing\?limit=3 404 \d+\.\dms$")
        fault = rf"injected fault {rule_id} error$"
        faulted = _log_lines(tmp_path, line + rf"{digest} POST /v1/threads 503 \d+\.\dms {fault}")
        assert len(faulted) == 1
        runs = r" INFO +emulator\.runs: " + rf"run {run.id} on thread {run.thread_id}: "
        assert _log_lines(tmp_path, runs + "created, queued$")
        assert _log_lines(tmp_path, runs + "queued -> in_progress$")
        assert _log_lines(tmp_path, runs + "in_progress -> completed$")
        assert KEY not in (tmp_path / "server.log").read_text(), "the key itself is never logged"


def test_warning_logs_no_request_lines(tmp_path: Path) -> None:
    """Control for the test above: with the level off, no request or run line (as before they existed)."""
    with run_server(tmp_path, EMULATOR_LOG_LEVEL="WARNING") as running:  # any case, like --log-level
        response = httpx.post(
            f"{running.base_url}/threads", json={}, headers={"Authorization": f"Bearer {KEY}", **BETA}
        )
        assert response.status_code == 200
        with httpx.Client() as probe:  # a request after it: its line would have been written by now
            assert probe.get(f"{running.root_url}/_emulator/health").status_code == 200
    log = (tmp_path / "server.log").read_text()
    assert "emulator.access" not in log and "emulator.runs" not in log
    assert "base URL:" in log, "the banner is printed at every level"


def test_an_unknown_log_level_is_refused_by_the_command_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "emulator", "--log-level", "chatty"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "--log-level: invalid choice: 'chatty'" in result.stderr
    help_text = subprocess.run(
        [sys.executable, "-m", "emulator", "--help"], capture_output=True, text=True, timeout=60
    ).stdout
    assert "{critical,error,warning,info,debug}" in help_text


def test_a_percent_encoded_newline_in_the_path_cannot_forge_a_log_line(tmp_path: Path) -> None:
    """The line shows the path as sent (`%0A` stays escaped): a request cannot write a second, fake line."""
    forged = "2026-12-03 08:00:00,000 INFO    emulator.access: deadbeef DELETE /v1/assistants/asst_1 200 1.0ms"
    with run_server(tmp_path, EMULATOR_LOG_LEVEL="info") as running:
        headers = {"Authorization": f"Bearer {KEY}", **BETA}
        answer = httpx.get(f"{running.base_url}/threads/x%0A{forged.replace(' ', '%20')}", headers=headers)
        assert answer.status_code == 404, answer.text
        [line] = _log_lines(tmp_path, r"emulator\.access: .* GET /v1/threads/x%0A")
        assert re.search(r"%20200%201\.0ms 404 \d+\.\dms$", line), line
    assert not [line for line in (tmp_path / "server.log").read_text().splitlines() if line.startswith(forged[:23])]
