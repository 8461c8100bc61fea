"""`tool_resources` of assistants and threads: checked against what exists, stored in response form."""

from __future__ import annotations

from typing import Any, Literal

from emulator import limits
from emulator.context import Ctx
from emulator.errors import InvalidRequest
from emulator.schemas.common import ToolResources
from emulator.services import vector_stores
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
        store_ids = list(resources.file_search.vector_store_ids)
        helpers = resources.file_search.vector_stores or []
        cap = _MAX_VECTOR_STORES[owner]
        for name, length in (("vector_store_ids", len(store_ids)), ("vector_stores", len(store_ids) + len(helpers))):
            if length > cap:
                raise InvalidRequest(
                    f"Invalid 'tool_resources.file_search.{name}': array too long. Expected an array with "
                    f"maximum length {cap}, but got an array with length {length} instead.",
                    param=f"tool_resources.file_search.{name}",
                    code="array_above_max_length",
                )
        vector_stores.require_usable(ctx, store_ids, "tool_resources.file_search.vector_store_ids")
        expiry = vector_stores.THREAD_STORE_EXPIRES_AFTER if owner == "thread" else None
        store_ids += [
            vector_stores.create_for_tool_resources(ctx, spec, i, expires_after=expiry).id
            for i, spec in enumerate(helpers)
        ]
        rendered["file_search"] = {"vector_store_ids": store_ids}
    return rendered
