"""Translate pydantic validation errors into the real API's 400 messages.

The real API names the offending parameter with a dotted path (`tools[0].function.name`). Pydantic's error
locations also contain union-member and discriminator tags, so the path is rebuilt by walking the request
body and keeping only the location parts that really index into it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic_core import ErrorDetails

from emulator.errors import INVALID_JSON_MESSAGE, InvalidRequest

_JSON_TYPE_NAMES = {
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a decimal",
    list: "an array",
    dict: "an object",
    type(None): "null",
}

_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a decimal",
    "float_parsing": "a decimal",
    "bool_type": "a boolean",
    "bool_parsing": "a boolean",
    "list_type": "an array",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "tuple_type": "an array",
}


def _describe(value: Any) -> str:
    return _JSON_TYPE_NAMES.get(type(value), "an object")


def _param_path(loc: Sequence[str | int], body: Any, *, missing: bool = False) -> tuple[str, Any]:
    """Return the dotted parameter path for `loc` and the input found there.

    A last part absent from the body is kept only for a missing field; otherwise it is a union member's label
    (`literal['auto']`, `tagged-union[...]`), not a parameter.
    """
    path = ""
    current = body
    parts = list(loc)
    if parts and parts[0] in ("query", "path", "header"):
        return ".".join(str(part) for part in parts[1:]), None
    if parts and parts[0] == "body":
        parts = parts[1:]
    tag_seen = False
    for index, part in enumerate(parts):
        is_last = index == len(parts) - 1
        if isinstance(part, int) and isinstance(current, list) and 0 <= part < len(current):
            path += f"[{part}]"
            current = current[part]
            tag_seen = False
        elif _is_union_tag(part, current) and not tag_seen and not is_last:
            tag_seen = True  # `{"type": "text", "text": ...}`: the first "text" is the tag, the next the field
        elif isinstance(part, str) and isinstance(current, dict) and (part in current or (is_last and missing)):
            path += f".{part}" if path else part
            current = current.get(part)
            tag_seen = False
    return path, current


def _is_union_tag(part: str | int, current: Any) -> bool:
    """A discriminated union puts the member's tag (the value of `type`) in the location."""
    return isinstance(part, str) and isinstance(current, dict) and current.get("type") == part


def _first_relevant(errors: Sequence[ErrorDetails]) -> ErrorDetails:
    """Prefer the most specific error: pydantic lists one per union member, the shallowest first.

    A type mismatch on one member of a union only says the value took another branch, so an error from the
    branch that matched the value's type (`content: []` is an empty array, not a wrong string) comes first.
    """
    for error in errors:
        if error["type"] == "extra_forbidden":
            return error
    specific = [error for error in errors if not _branch_mismatch(error)] or list(errors)
    return max(specific, key=lambda error: len(error["loc"]))


def _branch_mismatch(error: ErrorDetails) -> bool:
    """The value is not of this union member's kind at all (a dict offered to `Literal["auto"]`, say)."""
    if error["type"] in ("model_attributes_type", *_EXPECTED):
        return True
    return error["type"] == "literal_error" and not isinstance(error.get("input"), str)


def to_invalid_request(errors: Sequence[ErrorDetails], body: Any) -> InvalidRequest:
    error = _first_relevant(errors)
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "json_invalid":
        return InvalidRequest(INVALID_JSON_MESSAGE)
    param, value = _param_path(error["loc"], body, missing=kind == "missing")
    value = error.get("input", value)
    if not param and tuple(error["loc"]) == ("body",):
        return _whole_body(kind, value)
    if kind == "extra_forbidden":
        name = param.rsplit(".", 1)[-1] if param else str(error["loc"][-1])
        top_level = "." not in param and "[" not in param
        label = name if top_level else param
        return InvalidRequest(f"Unrecognized request argument supplied: {label}", param=None)
    if kind == "missing":
        return InvalidRequest(f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter")
    if kind == "openai":
        message = f"Invalid '{param}': {ctx['message']}" if ctx.get("about_param") and param else ctx["message"]
        return InvalidRequest(message, param=param or None, code=ctx.get("code"))
    if kind in _EXPECTED:
        return InvalidRequest(
            f"Invalid type for '{param}': expected {_EXPECTED[kind]}, but got {_describe(value)} instead.",
            param=param,
            code="invalid_type",
        )
    if kind == "string_too_long":
        limit = ctx.get("max_length")
        return InvalidRequest(
            f"Invalid '{param}': string too long. Expected a string with maximum length {limit}, "
            f"but got a string with length {len(value)} instead.",
            param=param,
            code="string_above_max_length",
        )
    if kind == "string_too_short":
        return InvalidRequest(
            f"Invalid '{param}': string too short. Expected a string with minimum length "
            f"{ctx.get('min_length')}, but got a string with length {len(value)} instead.",
            param=param,
            code="string_below_min_length",
        )
    if kind == "too_long":
        return InvalidRequest(
            f"Invalid '{param}': array too long. Expected an array with maximum length "
            f"{ctx.get('max_length')}, but got an array with length {ctx.get('actual_length')} instead.",
            param=param,
            code="array_above_max_length",
        )
    if kind == "too_short":
        return InvalidRequest(
            f"Invalid '{param}': empty array. Expected an array with minimum length "
            f"{ctx.get('min_length')}, but got an empty array instead.",
            param=param,
            code="empty_array",
        )
    if kind in ("less_than_equal", "less_than", "greater_than_equal", "greater_than"):
        return _out_of_range(param, kind, ctx, value)
    if kind in ("literal_error", "enum"):
        expected = ctx.get("expected", "")
        if not isinstance(value, str) and "'" in expected:
            return InvalidRequest(
                f"Invalid type for '{param}': expected a string, but got {_describe(value)} instead.",
                param=param,
                code="invalid_type",
            )
        return InvalidRequest(
            f"Invalid value: {value!r}. Supported values are: {expected}.", param=param, code="invalid_value"
        )
    if kind == "string_pattern_mismatch":
        return InvalidRequest(
            f"Invalid '{param}': string does not match pattern. Expected a string that matches the pattern "
            f"'{ctx.get('pattern')}'.",
            param=param,
            code="invalid_value",
        )
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        tag = ctx.get("discriminator", "'type'").strip("'")
        where = f"{param}.{tag}" if param else tag
        return InvalidRequest(
            f"Invalid value for '{where}': expected one of {ctx.get('expected_tags', '')}.",
            param=where,
            code="invalid_value",
        )
    return InvalidRequest(f"Invalid '{param}': {error['msg']}.", param=param or None, code="invalid_value")


def _whole_body(kind: str, value: Any) -> InvalidRequest:
    """The body itself is wrong: absent, not JSON (another content type), or JSON that is not an object."""
    if kind == "missing" or isinstance(value, (bytes, bytearray)):
        return InvalidRequest(INVALID_JSON_MESSAGE)
    return InvalidRequest(
        f"Invalid body: expected a JSON object, but got {_describe(value)} instead.", code="invalid_type"
    )


def _out_of_range(param: str, kind: str, ctx: dict[str, Any], value: Any) -> InvalidRequest:
    above = kind.startswith("less_than")
    bound = ctx.get("le", ctx.get("lt")) if above else ctx.get("ge", ctx.get("gt"))
    number = "integer" if isinstance(bound, int) and not isinstance(bound, bool) else "decimal"
    direction, comparison = ("above maximum", "<=") if above else ("below minimum", ">=")
    return InvalidRequest(
        f"Invalid '{param}': {number} {direction} value. Expected a value {comparison} {bound}, "
        f"but got {value} instead.",
        param=param,
        code=f"{number}_{'above_max' if above else 'below_min'}_value",
    )
