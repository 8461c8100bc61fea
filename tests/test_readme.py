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
