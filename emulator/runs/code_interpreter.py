"""The code_interpreter tool inside runs: the files a cell sees, running it, and what it made.

A code call is a built-in tool: the executor opens a `tool_calls` step, runs the cell (`emulator.sandbox`)
with the run's files (the thread's and the assistant's `tool_resources.code_interpreter.file_ids`, and message
attachments for code_interpreter), and completes the step with its `logs` output and an `image` output per
image it made. Every file the cell made is uploaded as a file with purpose `assistants_output`; the run keeps
the list (in its internal tool state) so the next model call can link or show them.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from sqlalchemy import select

from emulator.context import Ctx
from emulator.runs.prompt import completed_tool_calls
from emulator.sandbox import InputFile, cleanup, run_cell
from emulator.services import tool_resources
from emulator.services.files import storage_path
from emulator.store import files as file_store
from emulator.store.runs import Run, Step
from emulator.stub_model import CodeFile, CodeResult
from emulator.tables import FileRow, MessageRow

_IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".webp"})
_OUTPUTS = "code_interpreter_outputs"


def available(run: Run) -> bool:
    return any(tool["type"] == "code_interpreter" for tool in run.tools)


def _input_file_ids(ctx: Ctx, run: Run) -> list[str]:
    ids: list[str] = []
    for owned in tool_resources.of_run(ctx, run.thread_id, run.assistant_id):
        ids += (owned.get("code_interpreter") or {}).get("file_ids", [])
    for attachments in ctx.session.scalars(select(MessageRow.attachments).where(MessageRow.thread_id == run.thread_id)):
        for attachment in attachments or []:
            if any(tool.get("type") == "code_interpreter" for tool in attachment.get("tools", [])):
                ids.append(attachment["file_id"])
    return list(dict.fromkeys(ids))


def _inputs(ctx: Ctx, run: Run) -> list[InputFile]:
    wanted = _input_file_ids(ctx, run)
    if not wanted:
        return []
    rows = ctx.session.scalars(select(FileRow).where(FileRow.tenant == ctx.tenant, FileRow.id.in_(wanted)))
    return [InputFile(row.filename, Path(row.storage_path)) for row in rows if Path(row.storage_path).exists()]


def _keep(ctx: Ctx, made: Path) -> CodeFile:
    file_id = ctx.ids.new("file")
    target = storage_path(ctx.settings.files_dir, file_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(made, target)
    file_store.create(
        ctx.session,
        tenant=ctx.tenant,
        file_id=file_id,
        now=ctx.now,
        size=target.stat().st_size,
        filename=made.name,
        purpose="assistants_output",
        expires_at=None,
        storage_path=target,
    )
    return CodeFile(file_id=file_id, filename=made.name, image=made.suffix.lower() in _IMAGE_SUFFIXES)


def execute(ctx: Ctx, run: Run, code: str, call_id: str) -> dict[str, Any]:
    """Run the cell; the step's code_interpreter tool call, outputs included."""
    execution = run_cell(code, _inputs(ctx, run), root=ctx.settings.data_dir / "sandbox")
    try:
        made = [_keep(ctx, path) for path in execution.created]
    finally:
        cleanup(execution)
    outputs: list[dict[str, Any]] = [{"type": "logs", "logs": execution.logs}] if execution.logs else []
    outputs += [{"type": "image", "image": {"file_id": item.file_id}} for item in made if item.image]
    state = dict(run.tool_resources or {})
    state[_OUTPUTS] = {**state.get(_OUTPUTS, {}), call_id: [vars(item) for item in made]}
    run.tool_resources = state
    return {"id": call_id, "type": "code_interpreter", "code_interpreter": {"input": code, "outputs": outputs}}


def results(run: Run, steps: list[Step]) -> list[CodeResult] | None:
    """What the run's completed code calls (among its `steps`) produced, in order; None if it has run no code."""
    made_by_call = (run.tool_resources or {}).get(_OUTPUTS, {})
    found: list[CodeResult] = []
    for call in completed_tool_calls(steps, "code_interpreter"):
        details = call["code_interpreter"]
        logs = "".join(output["logs"] for output in details["outputs"] if output["type"] == "logs")
        files = tuple(CodeFile(**item) for item in made_by_call.get(call["id"], []))
        found.append(CodeResult(code=details["input"], logs=logs, files=files))
    return found or None
