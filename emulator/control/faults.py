"""Fault injection, LocalStack-style: declarative rules, first match wins, seeded probability.

A rule matches on method, a glob on the path and/or an official operationId. Its probability is drawn from a
generator seeded by the rule itself (its match, effect, probability and `seed`) and the match number, never by
its random id: the same rules added again, by any tenant on any server, replay the same outcomes. Effects: an HTTP
error in the OpenAI envelope (429/500/503), added latency, or a stream cut after N events.
"""

from __future__ import annotations

import fnmatch
import json
import random
from typing import Any

from emulator.errors import APIError, RateLimited, ServerError, ServiceUnavailable

_MESSAGES = {
    429: "Rate limit reached (injected fault).",
    500: "The server had an error while processing your request. Sorry about that!",
    503: "The engine is currently overloaded, please try again later.",
}


def matches(rule: dict[str, Any], method: str, path: str, operation: str | None) -> bool:
    match = rule.get("match") or {}
    if match.get("method") and match["method"] != method:
        return False
    if match.get("path") and not fnmatch.fnmatchcase(path, match["path"]):
        return False
    return not (match.get("operation") and match["operation"] != operation)


def draw(rule: dict[str, Any], match_number: int) -> float:
    """The probability draw for the n-th match of a rule: the same on every replay of the same rule."""
    return random.Random(f"{json.dumps(rule, sort_keys=True)}:{match_number}").random()


def error_for(effect: dict[str, Any]) -> APIError:
    status = effect["status"]
    message = effect.get("message") or _MESSAGES[status]
    headers = {}
    if effect.get("retry_after_seconds") is not None:
        headers["retry-after"] = f"{effect['retry_after_seconds']:g}"
        headers["retry-after-ms"] = str(int(effect["retry_after_seconds"] * 1000))
    if status == 429:
        return RateLimited(message, code="rate_limit_exceeded", headers=headers)
    if status == 503:
        return ServiceUnavailable(message, headers=headers)
    return ServerError(message, headers=headers)
