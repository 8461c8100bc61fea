"""Assistants: validation that needs more than the request body, then storage; the routes' one call each."""

from __future__ import annotations

from emulator import model_catalog
from emulator.context import Ctx
from emulator.errors import InvalidRequest
from emulator.schemas.assistants import CreateAssistant, ModifyAssistant
from emulator.schemas.common import dump_response_format, dump_tools
from emulator.services.tool_resources import resolve_tool_resources
from emulator.store import assistants as store
from emulator.store.pagination import Page, PageRequest
from emulator.store.rows import Assistant


def require_known_model(ctx: Ctx, model: str) -> None:
    if ctx.settings.accept_any_model or model_catalog.lookup(model) is not None:
        return
    raise InvalidRequest(
        f"The requested model '{model}' does not exist.", param="model", code="model_not_found"
    )


def create(ctx: Ctx, body: CreateAssistant) -> Assistant:
    require_known_model(ctx, body.model)
    return store.create(
        ctx.session,
        tenant=ctx.tenant,
        assistant_id=ctx.ids.new("assistant"),
        created_at=ctx.now,
        model=body.model,
        name=body.name,
        description=body.description,
        instructions=body.instructions,
        tools=dump_tools(body.tools or []),
        tool_resources=resolve_tool_resources(ctx, body.tool_resources, owner="assistant"),
        metadata_=body.metadata or {},
        temperature=1.0 if body.temperature is None else body.temperature,
        top_p=1.0 if body.top_p is None else body.top_p,
        response_format=dump_response_format(body.response_format),
        reasoning_effort=body.reasoning_effort,
    )


def update(ctx: Ctx, assistant_id: str, body: ModifyAssistant) -> Assistant:
    """Change the fields the body gives (a field given as null is set to null); the unit of work writes them."""
    assistant = store.get(ctx.session, ctx.tenant, assistant_id)
    given = body.model_fields_set
    if "model" in given and body.model is not None:
        require_known_model(ctx, body.model)
        assistant.model = body.model
    for name in ("name", "description", "instructions", "reasoning_effort", "temperature", "top_p"):
        if name in given:
            setattr(assistant, name, getattr(body, name))
    if "tools" in given:
        assistant.tools = dump_tools(body.tools or [])
    if "tool_resources" in given:
        assistant.tool_resources = resolve_tool_resources(ctx, body.tool_resources, owner="assistant")
    if "metadata" in given:
        assistant.metadata_ = body.metadata or {}
    if "response_format" in given:
        assistant.response_format = dump_response_format(body.response_format)
    return assistant


def get(ctx: Ctx, assistant_id: str) -> Assistant:
    return store.get(ctx.session, ctx.tenant, assistant_id)


def list_page(ctx: Ctx, page: PageRequest) -> Page[Assistant]:
    return store.list_page(ctx.session, ctx.tenant, page)


def delete(ctx: Ctx, assistant_id: str) -> None:
    store.remove(ctx.session, ctx.tenant, assistant_id)
