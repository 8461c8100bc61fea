"""The pytest plugin, as a user would run it: pytest in a subprocess on the example test file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "test_tool_calling.py"


def _pytest(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE), *args],
        capture_output=True, text=True, timeout=240, cwd=EXAMPLE.parent,
    )


def test_example_suite_passes_with_the_plugin() -> None:
    result = _pytest()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_example_suite_passes_under_xdist() -> None:
    result = _pytest("-n", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_a_failing_expectation_fails(tmp_path: Path) -> None:
    broken = tmp_path / "test_broken.py"
    broken.write_text(
        "def test_wrong(emulator):\n"
        "    emulator.script({'type': 'text', 'text': 'scripted'})\n"
        "    client = emulator.client\n"
        "    assistant = client.beta.assistants.create(model='gpt-4o')\n"
        "    thread = client.beta.threads.create(messages=[{'role': 'user', 'content': 'hi'}])\n"
        "    client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)\n"
        "    assert client.beta.threads.messages.list(thread.id).data[0].content[0].text.value == 'other'\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(broken)],
        capture_output=True, text=True, timeout=240, cwd=tmp_path,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "'scripted' == 'other'" in result.stdout or "assert 'scripted' == 'other'" in result.stdout
