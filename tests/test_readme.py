"""The README's own examples run as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _example(name: str) -> str:
    match = re.search(rf"<!-- example: {name} -->\n```python\n(.*?)```", README.read_text(), re.DOTALL)
    assert match, f"the README has no `{name}` example"
    return match.group(1)


def test_the_unittest_example_starts_a_server_and_passes(tmp_path: Path) -> None:
    (tmp_path / "test_readme_example.py").write_text(_example("unittest"))
    env = {key: value for key, value in os.environ.items() if not key.startswith("EMULATOR_")}
    result = subprocess.run(
        [sys.executable, "-m", "unittest", "-v", "test_readme_example"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "test_the_stub_model_echoes (test_readme_example.AssistantTests" in result.stderr
    assert result.stderr.rstrip().endswith("OK")


def test_the_readme_names_the_supported_versions_and_the_foreground_server() -> None:
    from importlib.metadata import version

    text = README.read_text()
    assert "Command 1 keeps its terminal" in text
    named = re.search(r"the tests run with openai (\d+)\.\d+\.\d+", text)
    assert named and named.group(1) == version("openai").split(".")[0], "the SDK major version the suite runs"
    assert "Python 3.11 or newer" in text
    assert "| `--log-level` / `EMULATOR_LOG_LEVEL` | `info` |" in text


def test_the_record_and_replay_example_records_once_then_replays_with_no_upstream(tmp_path: Path) -> None:
    """The README's conftest and test, run by pytest as a user would: once against an upstream (the fake one,
    a real HTTP server) with `EMULATOR_RECORD`, then with the upstream stopped and no `EMULATOR_*` set."""
    from tests.fake_upstream import FakeUpstream, Reply

    (tmp_path / "conftest.py").write_text(_example("record-conftest"))
    (tmp_path / "test_answers.py").write_text(_example("record-test"))
    clean = {key: value for key, value in os.environ.items() if not key.startswith("EMULATOR_")}
    with FakeUpstream(Reply(text="Blue.")) as upstream:
        recording = _pytest(tmp_path, {**clean, "EMULATOR_UPSTREAM_URL": upstream.url,
                                       "EMULATOR_RECORD": str(tmp_path / "turns.yaml")})
        asked = len(upstream.requests)
    assert recording.returncode == 0, recording.stdout + recording.stderr
    assert "answer: Blue." in recording.stdout
    assert asked == 1
    assert "Blue." in (tmp_path / "turns.yaml").read_text()
    replaying = _pytest(tmp_path, clean)
    assert replaying.returncode == 0, replaying.stdout + replaying.stderr
    assert "answer: Blue." in replaying.stdout, "the recorded answer, not the stub's"


def _pytest(folder: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-s", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", "test_answers.py"],
        cwd=folder, env=env, capture_output=True, text=True, timeout=180,
    )
