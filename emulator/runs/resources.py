"""The `tool_resources` a run's built-in tools use: its thread's, then its assistant's."""

from __future__ import annotations

import contextlib
from typing import Any

from emulator.context import Ctx
from emulator.errors import NotFound
from emulator.store import assistants, threads
from emulator.store.rows import Run


def of_run(ctx: Ctx, run: Run) -> list[dict[str, Any]]:
    """The thread's resources, then the assistant's (a deleted assistant leaves its runs without its
    resources)."""
    owned = [threads.tool_resources_of(ctx.session, run.thread_id)]
    with contextlib.suppress(NotFound):
        owned.append(assistants.get(ctx.session, ctx.tenant, run.assistant_id).tool_resources)
    return owned
