"""Runs a code_interpreter cell: Python in a subprocess, in its own working directory, with limits.

The limits of the hosted tool (SPEC.md): 120 s per execution and 512 MB of memory (`emulator.limits`). The
cell runs like a notebook cell: its output is what it prints, and the value of a last bare expression is
shown too. Input files are copied in under their own names beside the code, as the hosted tool's
`/mnt/data`; every file the cell creates or changes there comes back as an output.

This is isolation for convenience, not a security boundary: the process has the server user's rights and the
machine's network. Run untrusted code elsewhere.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from emulator import limits
from emulator.db import require_worker_thread

_RUNNER = r"""
import ast, resource, sys
memory, seconds = int(sys.argv[2]), int(sys.argv[3])
resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 1))
source = open(sys.argv[1], encoding="utf-8").read()
tree = ast.parse(source, "<cell>")
last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
namespace = {"__name__": "__main__"}
exec(compile(tree, "<cell>", "exec"), namespace)
if last is not None:
    value = eval(compile(ast.Expression(last.value), "<cell>", "eval"), namespace)
    if value is not None:
        print(repr(value))
"""


@dataclass(frozen=True)
class InputFile:
    name: str
    path: Path


@dataclass(frozen=True)
class Execution:
    logs: str
    created: list[Path] = field(default_factory=list)
    """Files the cell created or changed in its working directory (absolute paths, sorted by name)."""
    workdir: Path | None = None


def _snapshot(directory: Path) -> dict[str, tuple[int, int]]:
    return {
        str(path.relative_to(directory)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in directory.rglob("*")
        if path.is_file()
    }


def run_cell(code: str, inputs: Iterable[InputFile], *, root: Path) -> Execution:
    """Run `code` with `inputs` beside it; the caller removes `Execution.workdir` when done with the outputs."""
    root.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="cell-", dir=root))
    data = workdir / "data"
    data.mkdir()
    for item in inputs:
        shutil.copyfile(item.path, data / Path(item.name).name)
    (workdir / "cell.py").write_text(code, encoding="utf-8")
    (workdir / "runner.py").write_text(_RUNNER, encoding="utf-8")
    before = _snapshot(data)
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(data),
        "MPLBACKEND": "Agg",
        "PYTHONIOENCODING": "utf-8",
    }
    command = [
        sys.executable,
        "-I",
        str(workdir / "runner.py"),
        str(workdir / "cell.py"),
        str(limits.CODE_INTERPRETER_MEMORY_BYTES),
        str(limits.CODE_INTERPRETER_TIMEOUT_SECONDS),
    ]
    require_worker_thread("a code_interpreter cell runs in a subprocess")
    try:
        completed = subprocess.run(
            command,
            cwd=data,
            env=environment,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=limits.CODE_INTERPRETER_TIMEOUT_SECONDS,
        )
        logs = completed.stdout + completed.stderr
    except subprocess.TimeoutExpired as expired:
        partial = (
            (expired.stdout or b"").decode("utf-8", "replace")
            if isinstance(expired.stdout, bytes)
            else (expired.stdout or "")
        )
        logs = partial + f"\nExecution timed out after {limits.CODE_INTERPRETER_TIMEOUT_SECONDS} seconds."
    after = _snapshot(data)
    created = sorted(data / name for name, stamp in after.items() if before.get(name) != stamp)
    return Execution(logs=logs[-limits.CODE_INTERPRETER_MAX_LOG_CHARS :], created=created, workdir=workdir)


def cleanup(execution: Execution) -> None:
    if execution.workdir is not None:
        shutil.rmtree(execution.workdir, ignore_errors=True)
