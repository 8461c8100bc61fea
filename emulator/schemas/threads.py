"""Wire shapes of threads."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from emulator.schemas.common import Metadata, StrictModel, ToolResources
from emulator.schemas.messages import CreateMessage

if TYPE_CHECKING:
    from emulator.store.rows import Thread


class ModifyThread(StrictModel):
    tool_resources: ToolResources | None = None
    metadata: Metadata = None


class CreateThread(ModifyThread):
    messages: list[CreateMessage] | None = None


def render_thread(row: Thread) -> dict[str, Any]:
    return {
        "id": row.id,
        "object": "thread",
        "created_at": row.created_at,
        "tool_resources": row.tool_resources,
        "metadata": row.metadata_,
    }
