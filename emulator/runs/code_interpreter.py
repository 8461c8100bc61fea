"""The code_interpreter tool inside runs: the files a cell sees, running it, and what it made.

A code call is a built-in tool: the executor opens a `tool_calls` step with the call's input (`open_call`),
then runs the cell in the thread's sandbox session (`run`) with the run's files (the thread's and the
assistant's `tool_resources.code_interpreter.file_ids`, and message attachments for code_interpreter), and
completes the step with its `logs` output and an `image` output per image it made (`record`). Every file the
cell made is uploaded as a file with purpose `assistants_output`; the run keeps the list (in its internal tool
state) so the next model call can link or show them, and the ids of the sessions it started (billed).

The cell runs with no database transaction open: `run` claims the run (its lease, `outside.HELD_SECONDS`,
renewed while the cell runs, so that a process killed mid-cell leaves the run to another within seconds) and
commits before the cell, and reads the run again after it, so that a cancel or an expiry meanwhile wins.
A cell is a runner's work (or a stream's), never a read's: a read that reaches it answers the run `in_progress`
(`executor.advance_once`, `runs.schedule`).
"""

from __future__ import annotations

import logging
import shutil
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulator import processes, sandbox
from emulator.context import Ctx
from emulator.db import require_worker_thread
from emulator.runs import backends, outside, pending, resources
from emulator.runs.prompt import completed_tool_calls
from emulator.runs.state import RunStatus
from emulator.sandbox import Execution, InputFile, SandboxError
from emulator.sandbox.files import remove_tree
from emulator.store import files as file_store
from emulator.store import runs as store
from emulator.store.rows import Run, RunStep
from emulator.stub_model import CodeFile, CodeResult

log = logging.getLogger("emulator.runs")

_IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".webp"})
_OUTPUTS = "code_interpreter_outputs"
SESSIONS = "code_interpreter_sessions"
"""Internal tool state of a run: the ids of the code_interpreter sessions it started (each billed once)."""
_MOVED = "[the cell was stopped: its run was cancelled or expired]\n"
"""What a cell whose run moved on while it ran says (its result is discarded, `run`)."""
_CLAIMANT: dict[str, Any] = {**processes.THIS_PROCESS, "token": uuid.uuid4().hex}
"""Who claims a run while its cell runs (see `claim_orphaned`): this process, and this server within it."""


def available(run: Run) -> bool:
    return any(tool["type"] == "code_interpreter" for tool in run.tools)


def _input_file_ids(ctx: Ctx, run: Run) -> list[str]:
    ids: list[str] = []
    for owned in resources.of_run(ctx, run):
        ids += (owned.get("code_interpreter") or {}).get("file_ids", [])
    for attachments in store.attachments_of_thread(ctx.session, run.thread_id):
        for attachment in attachments:
            if any(tool.get("type") == "code_interpreter" for tool in attachment.get("tools", [])):
                ids.append(attachment["file_id"])
    return list(dict.fromkeys(ids))


def _inputs(ctx: Ctx, run: Run) -> list[InputFile]:
    wanted = _input_file_ids(ctx, run)
    if not wanted:
        return []
    found = store.stored_files(ctx.session, ctx.tenant, wanted)
    return [InputFile(file_id, filename, Path(path)) for file_id, filename, path in found if Path(path).exists()]


def open_call(call_id: str, code: str) -> dict[str, Any]:
    """The step's code_interpreter tool call while the cell runs: its input, no outputs yet."""
    return {"id": call_id, "type": "code_interpreter", "code_interpreter": {"input": code, "outputs": []}}


@dataclass(frozen=True)
class Outcome:
    """What came of running a cell: its execution, or the sandbox's failure; `current` is False when the run
    moved (cancelled, expired, deleted) while the cell ran and the result is dropped."""

    current: bool
    execution: Execution | None = None
    failure: str | None = None


def _key(call_id: str) -> str:
    return f"code:{call_id}"


def result_waiting(run: Run) -> bool:
    """This process ran the run's pending cell and keeps its result: the next unit of work records it (no claim
    to wait out, no interruption to count)."""
    turn = pending.of(run) if outside.waiting(run) else None
    return isinstance(turn, pending.CodeTurn) and outside.kept(run.id, _key(turn.call_id))[0]


def run(ctx: Ctx, run: Run, code: str, call_id: str) -> Outcome:
    """Run the cell outside any transaction (`outside`): claim the run, commit, run, then read the run again."""
    require_worker_thread("a code_interpreter cell runs in the sandbox")
    found, kept = outside.kept(run.id, _key(call_id))
    execution, failure = kept if found else _claim_and_execute(ctx, run, code, call_id)
    if not outside.reread(ctx, run):
        return Outcome(current=False)
    if not _still_waiting_for(run, call_id):
        if execution is not None:
            _bill_session(run, execution)
        return Outcome(current=False)
    return Outcome(current=True, execution=execution, failure=failure)


def forget_results(run_id: str) -> None:
    """The run failed while recording a result of work done outside its transaction: the kept results go."""
    for result in outside.drop_all(run_id):
        if isinstance(result, tuple) and isinstance(result[0], Execution):
            cleanup(result[0])


def _claim_and_execute(ctx: Ctx, run: Run, code: str, call_id: str) -> tuple[Execution | None, str | None]:
    inputs = _inputs(ctx, run)
    now = ctx.now
    box = sandbox.installed()
    turn = pending.of(run)
    assert isinstance(turn, pending.CodeTurn)
    pending.put(run, turn.claimed(_CLAIMANT))
    outside.claim(ctx, run, "code_interpreter cell", outside.HELD_SECONDS)
    execution, failure = None, None
    moved = threading.Event()
    try:
        with outside.renewing(ctx, run.id, moved.set):
            execution = box.execute(tenant=run.tenant, thread_id=run.thread_id, now=now, code=code, inputs=inputs,
                                    stop=lambda: _MOVED if moved.is_set() else None)
    except SandboxError as error:
        failure = str(error)
    except Exception as error:  # any failure of the sandbox fails the call, never the server's request
        log.exception("code_interpreter sandbox failed for run %s", run.id)
        failure = f"the code_interpreter sandbox failed: {type(error).__name__}"
    outside.keep(run.id, _key(call_id), (execution, failure))
    return execution, failure


def commit_result(ctx: Ctx, run: Run, call_id: str) -> None:
    """The call's result (or the run's move) commits at once: what the request does next (a 404, a retry)
    cannot lose it and run the cell again."""
    kept = outside.commit(ctx, run, _key(call_id))
    if kept is not None and kept[0] is not None:
        cleanup(kept[0])


def claim_orphaned(run: Run) -> bool:
    """The run's cell was claimed by a server that is gone (it crashed or was killed mid-cell; `processes`):
    its claim (the lease) need not be waited out."""
    turn = pending.of(run)
    if not isinstance(turn, pending.CodeTurn) or turn.claimed_by is None:
        return False
    if processes.is_this_process(turn.claimed_by):
        return bool(turn.claimed_by.get("token") != _CLAIMANT["token"])
    return processes.is_gone(turn.claimed_by)


def start_billing(run: Run) -> None:
    """The run may start code_interpreter sessions: its record of them starts (empty), so the usage report
    counts what it records, never a guess from its steps."""
    state = dict(run.tool_resources or {})
    if SESSIONS not in state:
        state[SESSIONS] = []
        run.tool_resources = state


def _bill_session(run: Run, execution: Execution) -> None:
    """The session the call started is billed (once), whether or not the run keeps the call's result."""
    if execution.new_session is not None and execution.new_session not in (run.tool_resources or {}).get(SESSIONS, []):
        state = dict(run.tool_resources or {})
        state[SESSIONS] = [*state.get(SESSIONS, []), execution.new_session]
        run.tool_resources = state


def _still_waiting_for(run: Run, call_id: str) -> bool:
    turn = pending.of(run)
    return run.status == RunStatus.IN_PROGRESS and isinstance(turn, pending.CodeTurn) and turn.call_id == call_id


def cleanup(execution: Execution) -> None:
    if execution.workdir is not None:
        remove_tree(execution.workdir)


def _keep(ctx: Ctx, made: Path, name: str) -> CodeFile:
    """Store the file the cell made as `name` (its path under /mnt/data); its stored copy goes if its row does not."""
    file_id = ctx.ids.new("file")
    target = backends.files().storage_path(ctx.settings.files_dir, file_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(made, target)  # the working copy goes at once (a file of up to 512 MB is not kept twice)
    try:
        file_store.create(
            ctx.session,
            tenant=ctx.tenant,
            file_id=file_id,
            now=ctx.now,
            size=target.stat().st_size,
            filename=name,
            purpose="assistants_output",
            expires_at=None,
            storage_path=target,
        )
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return CodeFile(file_id=file_id, filename=name, image=Path(name).suffix.lower() in _IMAGE_SUFFIXES)


def record(ctx: Ctx, run: Run, code: str, call_id: str, execution: Execution) -> dict[str, Any]:
    """Keep what the cell made; the step's code_interpreter tool call, outputs included. (Its copies are removed
    once the result commits, `commit_result`.)"""
    made = [_keep(ctx, path, execution.name(path)) for path in execution.created]
    outputs: list[dict[str, Any]] = [{"type": "logs", "logs": execution.logs}] if execution.logs else []
    outputs += [{"type": "image", "image": {"file_id": item.file_id}} for item in made if item.image]
    _bill_session(run, execution)
    state = dict(run.tool_resources or {})
    state[_OUTPUTS] = {**state.get(_OUTPUTS, {}), call_id: [vars(item) for item in made]}
    run.tool_resources = state
    return {"id": call_id, "type": "code_interpreter", "code_interpreter": {"input": code, "outputs": outputs}}


def results(run: Run, steps: list[RunStep]) -> list[CodeResult] | None:
    """What the run's completed code calls (among its `steps`) produced, in order; None if it has run no code."""
    made_by_call = (run.tool_resources or {}).get(_OUTPUTS, {})
    found: list[CodeResult] = []
    for call in completed_tool_calls(steps, "code_interpreter"):
        details = call["code_interpreter"]
        logs = "".join(output["logs"] for output in details["outputs"] if output["type"] == "logs")
        files = tuple(CodeFile(**item) for item in made_by_call.get(call["id"], []))
        found.append(CodeResult(code=details["input"], logs=logs, files=files))
    return found or None
