"""Deterministic instances of a JSON Schema: the stub model's function arguments and structured answers.

Covers what function schemas use in practice: object (required and, in strict mode, all properties; enough
properties for minProperties), array (minItems, maxItems, uniqueItems, prefixItems), string (enum, const,
format, minLength, maxLength; no pattern), integer and number (minimum, maximum, their exclusive forms,
multipleOf), boolean, null, anyOf (first branch), oneOf (the first branch whose instance matches no other
branch), allOf (merged), `default` and `examples`.

The choices: the first enum value, `example <property name>` (or the hint) for strings, 1 for numbers when the
bounds allow it (else the nearest allowed value), True, one array item unless minItems asks for more. Items
that must be unique are made distinct (the next enum value, a suffix, the next number).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from jsonschema import Draft202012Validator

_FORMATS: dict[str, Callable[[int], str]] = {
    "date": lambda n: f"2024-01-{1 + n % 28:02d}",
    "date-time": lambda n: f"2024-01-{1 + n % 28:02d}T00:00:00Z",
    "time": lambda n: f"00:00:{n % 60:02d}Z",
    "email": lambda n: f"user{n or ''}@example.com",
    "uri": lambda n: "https://example.com" + (f"/{n}" if n else ""),
    "uuid": lambda n: f"00000000-0000-4000-8000-{n:012d}",
    "ipv4": lambda n: f"127.0.0.{1 + n % 254}",
    "ipv6": lambda n: f"::{1 + n:x}",
    "hostname": lambda n: f"host{n}.example.com" if n else "example.com",
}


def instance(schema: dict[str, Any] | bool | None, *, name: str = "value", hint: str = "", strict: bool = False) -> Any:
    """An instance valid against `schema`; `hint` (e.g. the user's words) seeds free-text strings."""
    return _instance(schema, name, hint, strict, 0)


def _instance(schema: dict[str, Any] | bool | None, name: str, hint: str, strict: bool, variant: int) -> Any:
    """`variant` > 0 asks for another instance than variant 0 where the schema leaves a choice."""
    if schema is None or schema is True or schema == {}:
        text = hint or name
        return f"{text}-{variant}" if variant else text
    if schema is False:
        raise ValueError("no instance satisfies the schema `false`")
    for key in ("const", "default"):
        if key in schema:
            return schema[key]
    if schema.get("enum"):
        return schema["enum"][variant % len(schema["enum"])]
    if schema.get("examples"):
        return schema["examples"][variant % len(schema["examples"])]
    if schema.get("anyOf"):
        return _instance(schema["anyOf"][0], name, hint, strict, variant)
    if schema.get("oneOf"):
        return _one_of(schema["oneOf"], name, hint, strict, variant)
    if schema.get("allOf"):
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            _merge(merged, part)
        return _instance(merged, name, hint, strict, variant)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((option for option in kind if option != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "string"
    return _BUILDERS[kind](schema, name, hint, strict, variant)


def _one_of(branches: list[Any], name: str, hint: str, strict: bool, variant: int) -> Any:
    validators = [Draft202012Validator(branch) for branch in branches]
    candidates = [_instance(branch, name, hint, strict, variant) for branch in branches]
    for candidate in candidates:
        if sum(validator.is_valid(candidate) for validator in validators) == 1:
            return candidate
    return candidates[0]


def _merge(target: dict[str, Any], part: dict[str, Any]) -> None:
    for key, value in part.items():
        if key == "properties":
            target.setdefault("properties", {}).update(value)
        elif key == "required":
            target.setdefault("required", []).extend(value)
        else:
            target[key] = value


def _object(schema: dict[str, Any], _name: str, hint: str, strict: bool, variant: int) -> dict[str, Any]:
    properties: dict[str, Any] = schema.get("properties", {})
    wanted = list(properties) if strict else []
    for required in schema.get("required", []):
        if required not in wanted:
            wanted.append(required)
    for key in properties:
        if len(wanted) >= schema.get("minProperties", 0):
            break
        if key not in wanted:
            wanted.append(key)
    return {key: _instance(properties.get(key), key, hint, strict, variant) for key in wanted}


def _array(schema: dict[str, Any], name: str, hint: str, strict: bool, variant: int) -> list[Any]:
    prefix: list[Any] = schema.get("prefixItems", [])
    count = max(1, schema.get("minItems", 1), len(prefix))
    if "maxItems" in schema:
        count = min(count, schema["maxItems"])
    items = schema.get("items", {})
    unique = bool(schema.get("uniqueItems"))
    return [
        _instance(
            prefix[index] if index < len(prefix) else items, name, hint, strict, variant + index if unique else variant
        )
        for index in range(count)
    ]


def _string(schema: dict[str, Any], name: str, hint: str, _strict: bool, variant: int) -> str:
    if schema.get("format") in _FORMATS:
        return _FORMATS[schema["format"]](variant)
    text = hint or f"example {name}"
    suffix = f"-{variant}" if variant else ""
    minimum, maximum = schema.get("minLength", 0), schema.get("maxLength")
    if maximum is not None:
        text = text[: max(0, maximum - len(suffix))]
    text += suffix
    if len(text) < minimum:
        text = text + "x" * (minimum - len(text))
    if maximum is not None:
        text = text[:maximum]
    return text


def _number(schema: dict[str, Any], _name: str, _hint: str, _strict: bool, variant: int) -> float:
    return float(_bounded(schema, integer=False, variant=variant))


def _integer(schema: dict[str, Any], _name: str, _hint: str, _strict: bool, variant: int) -> int:
    return int(_bounded(schema, integer=True, variant=variant))


def _bounded(schema: dict[str, Any], *, integer: bool, variant: int) -> float:
    """1 if the bounds allow it, else the nearest allowed value; `variant` steps away from it, in bounds."""
    low, low_open = _bound(schema, "minimum", "exclusiveMinimum", max)
    high, high_open = _bound(schema, "maximum", "exclusiveMaximum", min)
    if integer:  # the same bounds, closed, on whole numbers
        low = None if low is None else math.floor(low) + 1 if low_open else math.ceil(low)
        high = None if high is None else math.ceil(high) - 1 if high_open else math.floor(high)
        low_open = high_open = False

    def above_low(value: float) -> bool:
        return low is None or (value > low if low_open else value >= low)

    def allowed(value: float) -> bool:
        return above_low(value) and (high is None or (value < high if high_open else value <= high))

    base = 1.0
    if not allowed(base):
        near, inward = (low, 1) if not above_low(base) else (high, -1)
        middle = (low + high) / 2 if low is not None and high is not None else near
        base = next((value for value in (near, near + inward, middle) if allowed(value)), near)
    step = schema.get("multipleOf") or 1
    if "multipleOf" in schema:
        up, down = step * math.ceil(base / step), step * math.floor(base / step)
        base = next((value for value in (up, down, up + step) if allowed(value)), up)
    # Offsets 0, +1, -1, +2, -2 ... steps: the variant-th that stays in bounds.
    offsets = ((attempt + 1) // 2 * (1 if attempt % 2 else -1) for attempt in range(4 * variant + 4))
    inside = [base + offset * step for offset in offsets if allowed(base + offset * step)]
    return inside[variant] if variant < len(inside) else base


def _bound(schema: dict[str, Any], closed: str, open_: str, tighter: Callable[..., Any]) -> tuple[Any, bool]:
    """The bound and whether it is exclusive; of `minimum` and `exclusiveMinimum` the tighter one wins."""
    value, exclusive = schema.get(closed), schema.get(open_)
    numeric = isinstance(exclusive, int | float) and not isinstance(exclusive, bool)
    if numeric and (value is None or tighter(value, exclusive) == exclusive):
        return exclusive, True
    return value, False


_BUILDERS: dict[str, Callable[[dict[str, Any], str, str, bool, int], Any]] = {
    "object": _object,
    "array": _array,
    "string": _string,
    "number": _number,
    "integer": _integer,
    "boolean": lambda _schema, _name, _hint, _strict, variant: variant % 2 == 0,
    "null": lambda _schema, _name, _hint, _strict, _variant: None,
}
