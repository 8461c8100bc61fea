"""The control middleware's one transaction per `/v1` request (`control.middleware.admit`): a request's hit on
its first live fault rule and its management rate charges, committed together before the route runs.

In process, against the storage: on SQLite on the event-loop lane (statements on the raw sqlite3 connection)
and in a worker thread; with `EMULATOR_TEST_DATABASE_URL` set, on a fresh PostgreSQL database.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from emulator import clock
from emulator.control import ratelimits
from emulator.control.middleware import Admission, admit
from emulator.store import fault_rules, rate_counters
from tests.units_of_work import Unit

TENANT = "tenant"
CREATE_THREAD = ("POST", "/v1/threads", "createThread")
ONE_POST_A_MINUTE = {"management": {"post": 1}}



def _rule(unit: Unit[Any], rule_id: str, effect: dict[str, Any], **rule: Any) -> tuple[str, dict[str, Any]]:
    definition = {"match": {"operation": "createThread"}, "effect": effect, "probability": 1.0, "seed": 0, **rule}
    unit(lambda session: fault_rules.add(session, tenant=TENANT, rule_id=rule_id, now=0, rule=definition))
    return rule_id, definition


def _admit(unit: Unit[Admission], rules: list[tuple[str, dict[str, Any]]], config: dict[str, Any]) -> Admission:
    return unit(lambda session: admit(session, TENANT, rules, config, CREATE_THREAD))


def _counts(unit: Unit[Any]) -> dict[str, tuple[int, int]]:
    """Each rule's (hits, fired)."""
    return unit(lambda session: {rule.id: (rule.hits, rule.fired) for rule in fault_rules.of_tenant(session, TENANT)})


def _posts_charged(unit: Unit[Any]) -> int:
    """The requests counted against the POST limit in the current window."""

    def read(session: Session) -> int:
        start = ratelimits.window_start(clock.now(session, TENANT))
        return rate_counters.lock_window(session, TENANT, "management:post", start).requests

    return int(unit(read))


def test_a_request_refused_by_a_limit_still_counts_its_fault_hit(unit: Unit[Any]) -> None:
    slow = _rule(unit, "fault_slow", {"type": "latency", "ms": 1})
    first = _admit(unit, [slow], ONE_POST_A_MINUTE)
    assert first.fired == slow and first.refusal is None
    assert first.headers["x-ratelimit-remaining-requests"] == "0"
    second = _admit(unit, [slow], ONE_POST_A_MINUTE)
    assert second.fired == slow and second.refusal is not None and second.refusal.status == 429
    assert _counts(unit) == {"fault_slow": (2, 2)}
    assert _posts_charged(unit) == 1


def test_an_error_fault_answers_without_a_charge_and_a_spent_rule_lets_the_request_through(unit: Unit[Any]) -> None:
    once = _rule(unit, "fault_once", {"type": "error", "status": 500}, times=1)
    fired = _admit(unit, [once], ONE_POST_A_MINUTE)
    assert fired == Admission(fired=once)
    assert _posts_charged(unit) == 0
    through = _admit(unit, [once], ONE_POST_A_MINUTE)
    assert through.fired is None and through.refusal is None
    assert through.headers["x-ratelimit-remaining-requests"] == "0"
    assert _counts(unit) == {"fault_once": (1, 1)}
    assert _posts_charged(unit) == 1


def test_the_first_live_rule_decides_and_a_draw_that_misses_fires_nothing(unit: Unit[Any]) -> None:
    spent = _rule(unit, "fault_spent", {"type": "error", "status": 503}, times=1)
    never = _rule(unit, "fault_never", {"type": "error", "status": 500}, probability=0.0)
    later = _rule(unit, "fault_later", {"type": "error", "status": 429})
    assert _admit(unit, [spent, never, later], {}).fired == spent
    assert _admit(unit, [spent, never, later], {}) == Admission()
    assert _admit(unit, [spent, never, later], {}) == Admission()
    assert _counts(unit) == {"fault_spent": (1, 1), "fault_never": (2, 0), "fault_later": (0, 0)}
