"""`tool_resources` of assistants and threads: checked against what exists, stored in response form."""

from __future__ import annotations

from typing import Any, Literal

from emulator import limits
from emulator.context import Ctx
from emulator.errors import InvalidRequest
from emulator.schemas.common import ToolResources
from emulator.store import files

_MAX_VECTOR_STORES = {
    "assistant": limits.ASSISTANT_MAX_VECTOR_STORES,
    "thread": limits.THREAD_MAX_VECTOR_STORES,
}


def resolve_tool_resources(
    ctx: Ctx, resources: ToolResources | None, *, owner: Literal["assistant", "thread"]
) -> dict[str, Any]:
    if resources is None:
        return {}
    rendered: dict[str, Any] = {}
    if resources.code_interpreter is not None:
        file_ids = resources.code_interpreter.file_ids
        files.require_existing(
            ctx.session, ctx.tenant, file_ids, param="tool_resources.code_interpreter.file_ids", now=ctx.now
        )
        rendered["code_interpreter"] = {"file_ids": file_ids}
    if resources.file_search is not None:
        store_ids = resources.file_search.vector_store_ids
        cap = _MAX_VECTOR_STORES[owner]
        if len(store_ids) > cap:
            raise InvalidRequest(
                f"Invalid 'tool_resources.file_search.vector_store_ids': array too long. Expected an array with "
                f"maximum length {cap}, but got an array with length {len(store_ids)} instead.",
                param="tool_resources.file_search.vector_store_ids",
                code="array_above_max_length",
            )
        rendered["file_search"] = {"vector_store_ids": store_ids}
    return rendered
