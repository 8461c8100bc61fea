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

from sqlalchemy.orm import Session

from emulator.context import Ctx
from emulator.errors import SERVER_ERROR_MESSAGE, APIError, RateLimited, ServerError, ServiceUnavailable
from emulator.schemas.control import AddFaults
from emulator.store import fault_rules
from emulator.store.rows import FaultRule

Rule = tuple[str, dict[str, Any]]
"""A rule's id and its definition (match, effect, probability, times, seed)."""

_MESSAGES = {
    429: "Rate limit reached (injected fault).",
    500: SERVER_ERROR_MESSAGE,
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


def fire(session: Session, matching: list[Rule]) -> Rule | None:
    """The rule that fires on a request, given the rules it matches in order; counts the hit of the first live
    one (a spent rule, which fired `times` already, no longer matches: the next gets its chance), and its firing
    when its probability draw says so."""
    for rule_id, rule in matching:
        times = rule.get("times")
        if fault_rules.spent(session, rule_id, times):
            continue
        number = fault_rules.count_hit(session, rule_id)
        if draw(rule, number) >= rule.get("probability", 1.0):
            return None
        return (rule_id, rule) if fault_rules.count_fired(session, rule_id, times) else None
    return None


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


def add(ctx: Ctx, body: AddFaults) -> list[FaultRule]:
    return [
        fault_rules.add(
            ctx.session, tenant=ctx.tenant, rule_id=ctx.ids.new("fault"), now=ctx.now, rule=rule.model_dump()
        )
        for rule in body.rules
    ]


def of_tenant(ctx: Ctx) -> list[FaultRule]:
    return fault_rules.of_tenant(ctx.session, ctx.tenant)


def clear(ctx: Ctx) -> int:
    return fault_rules.delete_tenant(ctx.session, ctx.tenant)
