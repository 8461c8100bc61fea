"""`emulator.schema_instance.instance`: every instance it makes is valid against its schema (checked with
jsonschema, Draft 2020-12, formats included), deterministic, and follows the documented choices.
"""

from __future__ import annotations

import datetime
import ipaddress
import uuid
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from emulator.schema_instance import instance


def assert_valid(schema: dict[str, Any], value: Any) -> None:
    Draft202012Validator.check_schema(schema)
    errors = [
        error.message
        for error in Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER).iter_errors(value)
    ]
    assert not errors, (schema, value, errors)


OBJECT = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 14},
        "when": {"type": "string", "format": "date"},
    },
    "required": ["city", "unit"],
}

VALID_CASES: dict[str, dict[str, Any]] = {
    "plain string": {"type": "string"},
    "string lengths": {"type": "string", "minLength": 40, "maxLength": 45},
    "short max length": {"type": "string", "maxLength": 3},
    "enum of strings": {"type": "string", "enum": ["red", "green"]},
    "enum of integers": {"type": "integer", "enum": [3, 5, 7]},
    "const": {"const": "fixed"},
    "boolean": {"type": "boolean"},
    "null": {"type": "null"},
    "nullable string": {"type": ["null", "string"]},
    "integer in bounds": {"type": "integer", "minimum": 10, "maximum": 20},
    "integer below one": {"type": "integer", "maximum": -5},
    "integer exclusive": {"type": "integer", "exclusiveMinimum": 5, "exclusiveMaximum": 7},
    "integer fractional bounds": {"type": "integer", "minimum": 1.5, "maximum": 3.5},
    "integer multipleOf above minimum": {"type": "integer", "minimum": 10, "maximum": 20, "multipleOf": 7},
    "number in bounds": {"type": "number", "minimum": 2.5, "maximum": 3.5},
    "number open unit interval": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
    "number negative range": {"type": "number", "minimum": -10, "maximum": -2},
    "number multipleOf": {"type": "number", "minimum": 0.25, "multipleOf": 0.5},
    "number just below an exclusive maximum": {"type": "number", "minimum": 5, "exclusiveMaximum": 5.5},
    "number above an exclusive minimum": {"type": "number", "exclusiveMinimum": 1, "maximum": 1.5},
    "integer above an exclusive minimum": {"type": "integer", "exclusiveMinimum": 1},
    "integer single value": {"type": "integer", "minimum": -3, "maximum": -3},
    "unique integers in a narrow range": {
        "type": "array",
        "items": {"type": "integer", "minimum": 0, "maximum": 2},
        "minItems": 3,
        "uniqueItems": True,
    },
    "unique booleans": {"type": "array", "items": {"type": "boolean"}, "minItems": 2, "uniqueItems": True},
    "unique objects": {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {"n": {"type": "integer"}, "s": {"type": "string"}},
            "required": ["n"],
        },
        "minItems": 3,
        "uniqueItems": True,
    },
    "array minItems": {"type": "array", "items": {"type": "integer"}, "minItems": 3},
    "array maxItems zero": {"type": "array", "items": {"type": "string"}, "maxItems": 0},
    "array unique items": {"type": "array", "items": {"type": "string"}, "minItems": 3, "uniqueItems": True},
    "array unique enum items": {
        "type": "array",
        "items": {"enum": ["a", "b", "c"]},
        "minItems": 2,
        "uniqueItems": True,
    },
    "array unique integers": {
        "type": "array",
        "items": {"type": "integer", "minimum": 0},
        "minItems": 4,
        "uniqueItems": True,
    },
    "tuple (prefixItems)": {
        "type": "array",
        "prefixItems": [{"type": "string"}, {"type": "integer", "minimum": 3}],
        "minItems": 2,
    },
    "object with required": OBJECT,
    "nested objects and arrays": {
        "type": "object",
        "properties": {
            "order": {
                "type": "object",
                "properties": {
                    "id": {"type": "string", "format": "uuid"},
                    "lines": {
                        "type": "array",
                        "minItems": 2,
                        "items": {
                            "type": "object",
                            "properties": {
                                "sku": {"type": "string", "minLength": 8},
                                "qty": {"type": "integer", "minimum": 1},
                                "price": {"type": "number", "exclusiveMinimum": 0},
                            },
                            "required": ["sku", "qty", "price"],
                            "additionalProperties": False,
                        },
                    },
                },
                "required": ["id", "lines"],
            }
        },
        "required": ["order"],
    },
    "anyOf": {"anyOf": [{"type": "integer", "minimum": 5}, {"type": "string"}]},
    "oneOf whose first instance matches two branches": {
        "oneOf": [{"type": "string"}, {"type": "string", "minLength": 1}, {"type": "integer"}]
    },
    "oneOf of objects": {
        "oneOf": [
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
            {"type": "object", "properties": {"b": {"type": "integer"}}, "required": ["b"]},
        ]
    },
    "allOf merged": {
        "allOf": [
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
            {"properties": {"b": {"type": "integer"}}, "required": ["b"]},
        ]
    },
    "minProperties without required": {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
        "minProperties": 2,
    },
    "formats": {
        "type": "object",
        "properties": {
            name: {"type": "string", "format": name}
            for name in ("date", "date-time", "time", "email", "uri", "uuid", "ipv4", "ipv6", "hostname")
        },
        "required": ["date", "date-time", "time", "email", "uri", "uuid", "ipv4", "ipv6", "hostname"],
    },
    "untyped properties mean an object": {"properties": {"x": {"type": "integer"}}, "required": ["x"]},
    "empty schema": {},
}


@pytest.mark.parametrize("schema", VALID_CASES.values(), ids=VALID_CASES.keys())
@pytest.mark.parametrize("strict", [False, True])
def test_every_instance_is_valid(schema: dict[str, Any], strict: bool) -> None:
    value = instance(schema, strict=strict)
    assert_valid(schema, value)
    assert instance(schema, strict=strict) == value, "deterministic"


def test_the_documented_choices() -> None:
    assert instance({"type": "string", "enum": ["c", "f"]}) == "c", "the first enum value"
    assert instance({"const": 7}) == 7
    assert instance({"type": "integer", "default": 42}) == 42
    assert instance({"type": "string", "examples": ["Paris"]}) == "Paris"
    assert instance({"type": "string"}, name="city") == "example city"
    assert instance({"type": "string"}, name="city", hint="user words") == "user words"
    assert instance({"type": "integer"}) == 1 and isinstance(instance({"type": "integer"}), int)
    assert instance({"type": "number"}) == 1.0
    assert instance({"type": "boolean"}) is True
    assert instance({"type": "array", "items": {"type": "boolean"}}) == [True], "one item unless minItems says more"
    assert instance({"type": "array", "items": {"type": "integer"}, "minItems": 3}) == [1, 1, 1]
    assert instance({"anyOf": [{"type": "integer"}, {"type": "string"}]}) == 1, "the first branch"
    assert instance({"type": "integer", "minimum": 10, "maximum": 20}) == 10, "the nearest allowed value"
    assert instance({"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}) == 0.5
    assert instance(VALID_CASES["unique integers in a narrow range"]) == [1, 2, 0], "unique items are made distinct"
    assert instance(VALID_CASES["array unique enum items"]) == ["a", "b"]


def test_non_strict_fills_required_only_and_strict_fills_every_property() -> None:
    assert set(instance(OBJECT)) == {"city", "unit"}
    full = instance(OBJECT, strict=True)
    assert set(full) == {"city", "unit", "days", "when"}
    assert full == {"city": "example city", "unit": "celsius", "days": 1, "when": "2024-01-01"}
    nested = {"type": "object", "properties": {"inner": {"type": "object", "properties": {"x": {"type": "string"}}}}}
    assert instance(nested) == {}
    assert instance(nested, strict=True) == {"inner": {"x": "example x"}}, "strict reaches nested objects"


def test_formats_are_real_values_of_their_format() -> None:
    value = instance(VALID_CASES["formats"])
    datetime.date.fromisoformat(value["date"])
    datetime.datetime.fromisoformat(value["date-time"].replace("Z", "+00:00"))
    datetime.time.fromisoformat(value["time"])
    uuid.UUID(value["uuid"])
    ipaddress.IPv4Address(value["ipv4"])
    ipaddress.IPv6Address(value["ipv6"])
    assert "@" in value["email"] and value["uri"].startswith("https://")


def test_the_schema_false_has_no_instance() -> None:
    with pytest.raises(ValueError, match="false"):
        instance(False)
    assert instance(True, name="v") == "v"
