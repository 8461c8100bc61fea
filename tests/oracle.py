"""The test oracle: every body is checked with the SDK's own pydantic types and the official field sets.

`tests/fixtures/schema_fields.json` holds each object's properties and required fields, extracted from the
official OpenAPI file by `scripts/extract_schema_fields.py`.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

T = TypeVar("T", bound=BaseModel)

_FIELDS = Path(__file__).parent / "fixtures" / "schema_fields.json"


@cache
def schema_fields() -> dict[str, dict[str, list[str]]]:
    return json.loads(_FIELDS.read_text())


def check_fields(body: dict[str, Any], schema_name: str) -> None:
    spec = schema_fields()[schema_name]
    keys = set(body)
    missing = set(spec["required"]) - keys
    unknown = keys - set(spec["properties"])
    assert not missing, f"{schema_name}: required fields missing: {sorted(missing)}"
    assert not unknown, f"{schema_name}: fields not in the official schema: {sorted(unknown)}"


def conforms(body: dict[str, Any], sdk_type: type[T], schema_name: str) -> T:
    """Validate `body` with the SDK type and the official field set; return the parsed SDK object."""
    check_fields(body, schema_name)
    return sdk_type.model_validate(body, strict=False)
