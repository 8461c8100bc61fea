"""Parts of code_interpreter checked without a server: the memory watch where no cgroup can be made, and the
stored copy of an output file whose row is not written."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from emulator.runs import code_interpreter
from emulator.sandbox import Mode, Sandbox, choose
from tests.test_code_sandbox import FOUR_CHILDREN_OF_300_MB


def test_without_a_cgroup_a_sessions_memory_is_watched(tmp_path: Path) -> None:
    launcher = choose(unsafe=False)
    if launcher.mode is not Mode.ISOLATED or not launcher.as_root:
        pytest.skip("the watch counts a session's own uid: needs the sandbox run by root")
    sandbox = Sandbox(launcher, tmp_path, 20)
    sandbox._groups = None  # as on a machine where the server cannot make a memory cgroup
    try:
        first = sandbox.execute(tenant="t", thread_id="thread", now=0, code=FOUR_CHILDREN_OF_300_MB, inputs=[])
        assert first.logs == ("The code_interpreter session ran out of memory (512 MB in all) and ended; its state "
                              "is lost."), first.logs
        again = sandbox.execute(tenant="t", thread_id="thread", now=0, code="print('new')", inputs=[])
        assert (again.logs, again.new_session is not None) == ("new\n", True)
    finally:
        sandbox.close()


def test_a_stored_output_copy_goes_when_its_row_is_not_written(tmp_path: Path, monkeypatch: Any) -> None:
    made = tmp_path / "work" / "made.csv"
    made.parent.mkdir()
    made.write_text("a,b")
    files_dir = tmp_path / "files"

    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the insert failed")

    monkeypatch.setattr(code_interpreter.file_store, "create", refuse)
    ctx: Any = SimpleNamespace(ids=SimpleNamespace(new=lambda prefix: f"{prefix}-abc"), settings=SimpleNamespace(
        files_dir=files_dir), session=None, tenant="t", now=0)
    with pytest.raises(RuntimeError):
        code_interpreter._keep(ctx, made, "made.csv")
    assert not made.exists() and list(files_dir.iterdir()) == []
