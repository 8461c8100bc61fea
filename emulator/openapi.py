"""The app's OpenAPI description, made to agree with the official one.

FastAPI describes our routes (parameters, request bodies). On top of that, each official operation gets its
official operationId (`createRun`, `submitToolOuputsToRun` [sic]: fault rules match on these), summary and
response schemas from `openapi_official.json` (extracted from the official file by `scripts/extract_openapi.py`);
every route's errors are the OpenAI error envelope (400, 401, 404), never FastAPI's 422 `HTTPValidationError`,
which the emulator never sends (`validation.py` turns those into 400s).
"""

from __future__ import annotations

import copy
import json
import re
from functools import cache
from pathlib import Path
from typing import Any, cast

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from emulator.operations import operation_of

_OFFICIAL_FILE = Path(__file__).parent / "openapi_official.json"
_ERROR = {"$ref": "#/components/schemas/ErrorResponse"}
_ERRORS = {
    "400": "Invalid request: the OpenAI error envelope (`invalid_request_error`).",
    "401": "No API key, or one outside EMULATOR_API_KEYS.",
    "404": "No such object for this API key (or no such URL).",
}
_FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")
_SECURITY = {  # what "Authorize" in the docs asks for, so that "Try it out" sends a key and the beta header
    "ApiKeyAuth": {"type": "http", "scheme": "bearer", "description": "Any key; each key is its own tenant."},
    "AssistantsBeta": {
        "type": "apiKey", "in": "header", "name": "OpenAI-Beta", "description": "`assistants=v2` for /v1 routes.",
    },
}
_TAGS = (  # the first resource named in a path, from the most specific: how the docs group operations
    ("/_emulator", "Control plane"), ("/steps", "Run steps"), ("/runs", "Runs"), ("/messages", "Messages"),
    ("/file_batches", "Vector store file batches"), ("/vector_stores/{vector_store_id}/files", "Vector store files"),
    ("/vector_stores", "Vector stores"), ("/threads", "Threads"), ("/assistants", "Assistants"), ("/files", "Files"),
    ("/models", "Models"),
)


@cache
def official() -> dict[str, Any]:
    """The extract: `operations` keyed by `METHOD /v1/path`, and the `components` they reference."""
    return cast(dict[str, Any], json.loads(_OFFICIAL_FILE.read_text()))


def operation_id(route: APIRoute) -> str:
    """The official operationId of a route, or its endpoint's name outside the official API (control plane)."""
    method = sorted(route.methods or ())[0]
    return operation_of(method, re.sub(r"\{[^}]+\}", "x", route.path_format)) or route.name


def describe(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document served at `/_emulator/openapi.json` (built once)."""
    if app.openapi_schema is None:
        document = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        _agree_with_official(document)
        app.openapi_schema = document
    return app.openapi_schema


def _agree_with_official(document: dict[str, Any]) -> None:
    extract = official()
    by_id = {operation["operationId"]: operation for operation in extract["operations"].values()}
    for path, item in document.get("paths", {}).items():
        for operation in item.values():
            operation["tags"] = [next((tag for part, tag in _TAGS if part in path), "Other")]
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            theirs = by_id.get(operation.get("operationId", ""))
            if theirs is not None:
                operation["summary"] = theirs.get("summary", operation.get("summary"))
                responses.update(copy.deepcopy(theirs["responses"]))
            for status, description in _ERRORS.items():
                responses[status] = {"description": description, "content": {"application/json": {"schema": _ERROR}}}
    components = document.setdefault("components", {})
    components["securitySchemes"] = _SECURITY
    document["security"] = [{name: [] for name in _SECURITY}]
    schemas = components.setdefault("schemas", {})
    for name in _FASTAPI_VALIDATION:
        schemas.pop(name, None)
    for kind, entries in extract["components"].items():
        ours = components.setdefault(kind, {})
        clashes = set(ours) & set(entries)
        if clashes:
            raise RuntimeError(f"schema names used both by the emulator and the official spec: {sorted(clashes)}")
        ours.update(copy.deepcopy(entries))
