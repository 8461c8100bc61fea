"""Deterministic instances of a JSON Schema: the stub model's function arguments and structured answers.

Covers what function schemas use in practice: object (required and, in strict mode, all properties),
array (minItems), string (enum, const, format, minLength, pattern-free), integer and number (bounds),
boolean, null, anyOf/oneOf/allOf (first branch; allOf merged), `default` and `examples`.
"""

from __future__ import annotations

from typing import Any

_FORMATS = {
    "date": "2024-01-01",
    "date-time": "2024-01-01T00:00:00Z",
    "time": "00:00:00",
    "email": "user@example.com",
    "uri": "https://example.com",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "ipv4": "127.0.0.1",
    "hostname": "example.com",
}


def instance(schema: dict[str, Any] | bool | None, *, name: str = "value", hint: str = "", strict: bool = False) -> Any:
    """An instance valid against `schema`; `hint` (e.g. the user's words) seeds free-text strings."""
    if schema is None or schema is True or schema == {}:
        return hint or name
    if schema is False:
        raise ValueError("no instance satisfies the schema `false`")
    for key in ("const", "default"):
        if key in schema:
            return schema[key]
    if schema.get("enum"):
        return schema["enum"][0]
    if schema.get("examples"):
        return schema["examples"][0]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            return instance(schema[key][0], name=name, hint=hint, strict=strict)
    if schema.get("allOf"):
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            _merge(merged, part)
        return instance(merged, name=name, hint=hint, strict=strict)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((option for option in kind if option != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "string"
    return _BUILDERS[kind](schema, name, hint, strict)


def _merge(target: dict[str, Any], part: dict[str, Any]) -> None:
    for key, value in part.items():
        if key == "properties":
            target.setdefault("properties", {}).update(value)
        elif key == "required":
            target.setdefault("required", []).extend(value)
        else:
            target[key] = value


def _object(schema: dict[str, Any], _name: str, hint: str, strict: bool) -> dict[str, Any]:
    properties: dict[str, Any] = schema.get("properties", {})
    wanted = list(properties) if strict else []
    for required in schema.get("required", []):
        if required not in wanted:
            wanted.append(required)
    return {key: instance(properties.get(key), name=key, hint=hint, strict=strict) for key in wanted}


def _array(schema: dict[str, Any], name: str, hint: str, strict: bool) -> list[Any]:
    count = max(1, schema.get("minItems", 1))
    if "maxItems" in schema:
        count = min(count, schema["maxItems"])
    items = schema.get("items", {})
    return [instance(items, name=name, hint=hint, strict=strict) for _ in range(count)]


def _string(schema: dict[str, Any], name: str, hint: str, _strict: bool) -> str:
    if schema.get("format") in _FORMATS:
        return _FORMATS[schema["format"]]
    text = hint or f"example {name}"
    minimum, maximum = schema.get("minLength", 0), schema.get("maxLength")
    if len(text) < minimum:
        text = text + "x" * (minimum - len(text))
    if maximum is not None:
        text = text[:maximum]
    return text


def _number(schema: dict[str, Any], _name: str, _hint: str, _strict: bool) -> float:
    return float(_bounded(schema, 1))


def _integer(schema: dict[str, Any], _name: str, _hint: str, _strict: bool) -> int:
    return int(_bounded(schema, 1))


def _bounded(schema: dict[str, Any], preferred: float) -> float:
    low = schema.get("minimum", schema["exclusiveMinimum"] + 1 if "exclusiveMinimum" in schema else None)
    high = schema.get("maximum", schema["exclusiveMaximum"] - 1 if "exclusiveMaximum" in schema else None)
    value = preferred
    if low is not None and value < low:
        value = low
    if high is not None and value > high:
        value = high
    multiple = schema.get("multipleOf")
    if multiple:
        value = multiple * max(1, round(value / multiple))
    return value


_BUILDERS = {
    "object": _object,
    "array": _array,
    "string": _string,
    "number": _number,
    "integer": _integer,
    "boolean": lambda _schema, _name, _hint, _strict: True,
    "null": lambda _schema, _name, _hint, _strict: None,
}
