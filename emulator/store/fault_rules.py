"""Fault rules: each tenant's, in the order they were added, with how often each matched and fired.

`hits` and `fired` are counted by atomic UPDATEs, not by changing records: concurrent requests (and replicas)
number a rule's matches without gaps or repeats, and a rule with `times` never fires more often.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.orm import Session

from emulator.store import statements
from emulator.store.records import Table
from emulator.store.rows import FaultRule
from emulator.tables import FaultRuleRow

FAULT_RULES = Table(FaultRule)

_rules = FaultRuleRow.__table__.c

_OF_TENANT = statements.prepared(
    statements.select_columns(FaultRuleRow, FaultRuleRow.tenant == bindparam("tenant")).order_by(FaultRuleRow.seq)
)
_DELETE_TENANT = statements.prepared(delete(FaultRuleRow).where(_rules.tenant == bindparam("tenant")))
_FIRED = statements.prepared(select(_rules.fired).where(_rules.id == bindparam("rule_id")))
_HITS = statements.prepared(select(_rules.hits).where(_rules.id == bindparam("rule_id")))
_COUNT_HIT = statements.prepared(
    update(FaultRuleRow).where(_rules.id == bindparam("rule_id")).values(hits=_rules.hits + 1)
)
_COUNT_FIRED = statements.prepared(
    update(FaultRuleRow).where(_rules.id == bindparam("rule_id")).values(fired=_rules.fired + 1)
)
_COUNT_FIRED_UNDER = statements.prepared(
    update(FaultRuleRow)
    .where(_rules.id == bindparam("rule_id"), _rules.fired < bindparam("times"))
    .values(fired=_rules.fired + 1)
)


def add(session: Session, *, tenant: str, rule_id: str, now: int, rule: dict[str, Any]) -> FaultRule:
    return FAULT_RULES.insert(
        session, {"id": rule_id, "tenant": tenant, "created_at": now, "rule": rule, "hits": 0, "fired": 0}
    )


def of_tenant(session: Session, tenant: str) -> list[FaultRule]:
    """The tenant's rules in the order they were added (the first that matches a request wins)."""
    return FAULT_RULES.load_all(session, _OF_TENANT, {"tenant": tenant})


def delete_tenant(session: Session, tenant: str) -> int:
    """Delete every rule of the tenant; returns how many."""
    return statements.execute(session, _DELETE_TENANT, {"tenant": tenant})


def spent(session: Session, rule_id: str, times: int | None) -> bool:
    """The rule has fired `times` times already, or is gone (a rule without `times` is never spent)."""
    if times is None:
        return False
    fired: int | None = statements.scalar(session, _FIRED, {"rule_id": rule_id})
    return fired is None or fired >= times


def count_hit(session: Session, rule_id: str) -> int:
    """Number this match of the rule (1, 2, …) atomically; its probability draw is keyed by the number."""
    statements.execute(session, _COUNT_HIT, {"rule_id": rule_id})
    hits: int | None = statements.scalar(session, _HITS, {"rule_id": rule_id})
    return hits or 0


def count_fired(session: Session, rule_id: str, times: int | None) -> bool:
    """Record a firing unless the rule has fired `times` already; True when it may fire."""
    if times is None:
        counted = statements.execute(session, _COUNT_FIRED, {"rule_id": rule_id})
    else:
        counted = statements.execute(session, _COUNT_FIRED_UNDER, {"rule_id": rule_id, "times": times})
    return counted == 1
