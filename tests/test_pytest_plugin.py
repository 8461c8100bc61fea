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


def test_one_tests_clock_advance_leaves_another_tests_objects_alone(tmp_path: Path) -> None:
    """Each test is its own tenant with its own clock: a test that advances 61 days (as a retention test does)
    expires nothing of a test running beside it on the same server."""
    suite = tmp_path / "test_neighbours.py"
    suite.write_text(
        "from openai import OpenAI\n"
        "\n"
        "left_behind = {}\n"
        "\n"
        "def test_a_thread_is_made(emulator):\n"
        "    left_behind.update(key=emulator.api_key, url=emulator.base_url, start=emulator.now(),\n"
        "                       thread=emulator.client.beta.threads.create().id)\n"
        "\n"
        "def test_another_test_advances_61_days(emulator):\n"
        "    before = emulator.now()\n"
        "    assert emulator.advance(61 * 86_400) >= before + 61 * 86_400\n"
        "\n"
        "def test_the_first_tests_thread_and_time_are_untouched(emulator):\n"
        "    first = OpenAI(base_url=left_behind['url'], api_key=left_behind['key'], max_retries=0)\n"
        "    assert first.beta.threads.retrieve(left_behind['thread']).id == left_behind['thread']\n"
        "    assert emulator.now() - left_behind['start'] < 60\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(suite)],
        capture_output=True, text=True, timeout=240, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout
