"""Wire shapes of assistants."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from emulator import limits
from emulator.schemas.common import (
    AssistantTools,
    Metadata,
    ReasoningEffort,
    ResponseFormat,
    StrictModel,
    Temperature,
    ToolResources,
    TopP,
)
from emulator.store.rows import Assistant

Name = Annotated[str | None, Field(max_length=limits.ASSISTANT_NAME_MAX_CHARS)]
Description = Annotated[str | None, Field(max_length=limits.ASSISTANT_DESCRIPTION_MAX_CHARS)]
Instructions = Annotated[str | None, Field(max_length=limits.ASSISTANT_INSTRUCTIONS_MAX_CHARS)]


class ModifyAssistant(StrictModel):
    model: str | None = None
    name: Name = None
    description: Description = None
    instructions: Instructions = None
    reasoning_effort: ReasoningEffort = None
    tools: AssistantTools | None = None
    tool_resources: ToolResources | None = None
    metadata: Metadata = None
    temperature: Temperature = None
    top_p: TopP = None
    response_format: ResponseFormat = None


class CreateAssistant(ModifyAssistant):
    model: str


def render_assistant(row: Assistant) -> dict[str, Any]:
    return {
        "id": row.id,
        "object": "assistant",
        "created_at": row.created_at,
        "name": row.name,
        "description": row.description,
        "model": row.model,
        "instructions": row.instructions,
        "tools": row.tools,
        "tool_resources": row.tool_resources,
        "metadata": row.metadata_,
        "temperature": row.temperature,
        "top_p": row.top_p,
        "response_format": row.response_format,
    }
