"""Each tenant's control state that `/v1` requests meet before their route (fault rules, rate limits), cached
per process.

The state of record is the database; a replica trusts its copy for `CONTROL_CACHE_SECONDS` and drops it at
once when it changes it itself, so a test that adds a rule and then calls the same server sees it immediately,
and other replicas see it within a second.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from emulator import limits
from emulator.control.faults import Rule
from emulator.store import fault_rules, tenant_settings


@dataclass(frozen=True)
class TenantControl:
    faults: tuple[Rule, ...] = ()
    rate_limits: dict[str, Any] | None = None

    @property
    def empty(self) -> bool:
        return not self.faults and not self.rate_limits


@dataclass
class ControlCache:
    _entries: dict[str, tuple[float, TenantControl]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def peek(self, tenant: str) -> TenantControl | None:
        entry = self._entries.get(tenant)
        if entry is None or time.monotonic() - entry[0] > limits.CONTROL_CACHE_SECONDS:
            return None
        return entry[1]

    def load(self, session: Session, tenant: str) -> TenantControl:
        """Read the tenant's state afresh (in the caller's transaction) and keep it."""
        settings = tenant_settings.load(session, tenant)
        control = TenantControl(
            faults=tuple((rule.id, rule.rule) for rule in fault_rules.of_tenant(session, tenant)),
            rate_limits=settings.rate_limits if settings else None,
        )
        with self._lock:
            self._entries[tenant] = (time.monotonic(), control)
        return control

    def invalidate(self, tenant: str) -> None:
        with self._lock:
            self._entries.pop(tenant, None)
