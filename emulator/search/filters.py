"""Attribute filters of vector store search: `ComparisonFilter` and `CompoundFilter`, evaluated in Python.

Comparison (`{"type", "key", "value"}`): eq, ne, gt, gte, lt, lte, in, nin. Values compare only with values
of the same kind: strings with strings, numbers with numbers (int and float alike), booleans with booleans.
A missing attribute, or one of another kind, satisfies only `ne` and `nin`. gt/gte/lt/lte order numbers and
strings (strings by code point). `in` / `nin` take a list. Compound: `and` / `or` over nested filters.
"""

from __future__ import annotations

from typing import Any

_MISSING = object()


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "other"


def _same_kind(left: Any, right: Any) -> bool:
    return left is not _MISSING and _kind(left) == _kind(right)


def _compare(op: str, actual: Any, expected: Any) -> bool:
    if op in ("in", "nin"):
        options = expected if isinstance(expected, list) else [expected]
        found = any(_same_kind(actual, option) and actual == option for option in options)
        return found if op == "in" else not found
    if op == "eq":
        return _same_kind(actual, expected) and actual == expected
    if op == "ne":
        return not (_same_kind(actual, expected) and actual == expected)
    if not _same_kind(actual, expected) or _kind(expected) == "bool":
        return False
    if op == "gt":
        return bool(actual > expected)
    if op == "gte":
        return bool(actual >= expected)
    if op == "lt":
        return bool(actual < expected)
    if op == "lte":
        return bool(actual <= expected)
    raise ValueError(f"unknown comparison {op!r}")


def matches(spec: dict[str, Any] | None, attributes: dict[str, Any] | None) -> bool:
    """Whether a file's `attributes` satisfy the filter `spec` (a plain dict, as the request gave it)."""
    if spec is None:
        return True
    attributes = attributes or {}
    kind = spec["type"]
    if kind == "and":
        return all(matches(child, attributes) for child in spec["filters"])
    if kind == "or":
        return any(matches(child, attributes) for child in spec["filters"])
    return _compare(kind, attributes.get(spec["key"], _MISSING), spec["value"])
