"""`/v1/models`: the model table of `emulator.model_catalog`."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from emulator import model_catalog
from emulator.api.deps import UnitOfWorkRoute, tenant, without_unit_of_work
from emulator.api.responses import OpenAIJSON, ok
from emulator.errors import NotFound
from emulator.schemas.models import render_model

router = APIRouter(prefix="/v1/models", dependencies=[Depends(tenant)], route_class=UnitOfWorkRoute)


@router.get("")
@without_unit_of_work  # the model table is code, not stored
def list_models() -> OpenAIJSON:
    return ok({"object": "list", "data": [render_model(info) for info in model_catalog.CATALOG.values()]})


@router.get("/{model:path}")
@without_unit_of_work
def retrieve_model(model: str) -> OpenAIJSON:
    info = model_catalog.lookup(model)
    if info is None:
        raise NotFound(f"The model '{model}' does not exist", param="model", code="model_not_found")
    return ok(render_model(info))
