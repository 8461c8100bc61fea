"""What any decoded request text must be, whatever field it is in: one rule for every string.

A JSON body is checked once, right after it is decoded and before anything else reads it (validation, the
JSON Schema checks of tools, storage): nested at most `limits.JSON_MAX_DEPTH` deep, and every string (values
and keys) valid Unicode without NUL. A lone surrogate (`"\\ud800"`) cannot be written as UTF-8, so it would fail
on the way out or into the database; NUL cannot be stored in a PostgreSQL text field, so SQLite refuses it too.
The walk is iterative: a body nested too deep is refused before anything recursive touches it.
"""

from __future__ import annotations

import re
from typing import Any

from emulator import limits
from emulator.errors import InvalidRequest

_BAD_CHARACTER = re.compile("[\x00\ud800-\udfff]")


def is_json_content_type(content_type: str | None, strict: bool) -> bool:
    """FastAPI's rule: a body is JSON when its type is application/json or */*+json, or absent and not strict."""
    if not content_type:
        return not strict
    main = content_type.partition(";")[0]
    kind, _, subtype = main.strip().lower().partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


def text_problem(value: str) -> str | None:
    """Why `value` cannot be accepted as text (None when it can)."""
    found = _BAD_CHARACTER.search(value)
    if found is None:
        return None
    if found.group() == "\x00":
        return "contains a NUL character (U+0000), which is not accepted in text"
    return f"contains a lone surrogate (U+{ord(found.group()):04X}), which is not valid Unicode"


def check_text(param: str, value: str) -> None:
    """A single text field (a form field, a file name): the same rule as every string of a JSON body."""
    problem = text_problem(value)
    if problem is not None:
        raise InvalidRequest(f"Invalid '{param}': string {problem}.", param=param, code="invalid_value")


def check_json_body(body: Any, raw: bytes) -> None:
    """Refuse a decoded JSON body nested deeper than the limit or holding a string that is not acceptable text.

    The error names the parameter: the path to the string (`metadata.user`, `messages[0].content`), the object
    whose key is wrong, or, for a body nested too deep, the top-level parameter the nesting is under.
    """
    if _plainly_acceptable(raw):
        return
    stack: list[tuple[Any, str, int]] = [(body, "", 1)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, str):
            check_text(path or "body", value)
            continue
        if not isinstance(value, (dict, list)):
            continue
        if depth > limits.JSON_MAX_DEPTH:
            _too_deep(path)
        if isinstance(value, dict):
            for key, item in value.items():
                problem = text_problem(key)
                if problem is not None:
                    param = path or "body"
                    raise InvalidRequest(f"Invalid '{param}': a key {problem}.", param=param, code="invalid_value")
                stack.append((item, f"{path}.{key}" if path else key, depth + 1))
        else:
            stack.extend((item, f"{path}[{index}]", depth + 1) for index, item in enumerate(value))


def _plainly_acceptable(raw: bytes) -> bool:
    """What most bodies are, told from their bytes far faster than by walking them: no `\\u` escape, no byte
    that starts an encoded surrogate (`json` decodes those) or is NUL (a UTF-16 or UTF-32 body), and fewer
    brackets than the depth bound (brackets inside strings only count against it)."""
    if b"\\u" in raw or b"\xed" in raw or b"\x00" in raw:
        return False
    return raw.count(b"{") + raw.count(b"[") <= limits.JSON_MAX_DEPTH


def _too_deep(path: str) -> None:
    top = re.split(r"[.\[]", path, maxsplit=1)[0] or "body"
    raise InvalidRequest(
        f"Invalid '{top}': JSON nested too deeply. Expected at most {limits.JSON_MAX_DEPTH} levels of nesting "
        "(objects and arrays) in a request body.",
        param=top,
        code="invalid_value",
    )
