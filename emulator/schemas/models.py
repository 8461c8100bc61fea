"""Wire shapes of models (the catalog entries of `emulator.model_catalog`)."""

from __future__ import annotations

from typing import Any

from emulator.model_catalog import ModelInfo


def render_model(info: ModelInfo) -> dict[str, Any]:
    return {"id": info.id, "object": "model", "created": info.created, "owned_by": info.owned_by}
