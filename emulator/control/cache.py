"""Each tenant's control state (fault rules, rate limits, latency profile), cached per process.

The state of record is the database; a replica trusts its copy for `CONTROL_CACHE_SECONDS` and drops it at
once when it changes it itself, so a test that adds a rule and then calls the same server sees it immediately,
and other replicas see it within a second.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from emulator import limits
from emulator.db import Database
from emulator.store import control as store


@dataclass(frozen=True)
class TenantControl:
    faults: tuple[tuple[str, dict[str, Any]], ...] = ()
    rate_limits: dict[str, Any] | None = None
    latency: dict[str, Any] | None = None

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

    def load(self, db: Database, tenant: str) -> TenantControl:
        with db.transaction(write=False) as session:
            settings = store.tenant_settings(session, tenant)
            control = TenantControl(
                faults=tuple((row.id, row.rule) for row in store.faults(session, tenant)),
                rate_limits=settings.rate_limits if settings else None,
                latency=settings.latency if settings else None,
            )
        with self._lock:
            self._entries[tenant] = (time.monotonic(), control)
        return control

    def invalidate(self, tenant: str) -> None:
        with self._lock:
            self._entries.pop(tenant, None)
