"""Vector store storage, priced in one place (SPEC.md: 1 GB free, then $0.10 per GB per day).

A store's `usage_bytes` is the sum of its files' stored chunk bytes (see `services.vector_store_ingest`). The free
gigabyte applies to a tenant's total over all its stores, as the real pricing applies it per organisation; a
GB is 10**9 bytes (`limits.VECTOR_STORE_FREE_BYTES`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from emulator import limits
from emulator.store import vector_stores as store

_BYTES_PER_GB = 1_000_000_000


def storage_cost_usd(usage_bytes: int, days: float = 1.0) -> float:
    """Price of keeping `usage_bytes` (a tenant's total) for `days` days."""
    billable = max(0, usage_bytes - limits.VECTOR_STORE_FREE_BYTES)
    return billable / _BYTES_PER_GB * limits.VECTOR_STORE_USD_PER_GB_DAY * days


@dataclass(frozen=True)
class StorageReport:
    usage_bytes: int
    billable_bytes: int
    usd_per_day: float


def tenant_storage(session: Session, tenant: str) -> StorageReport:
    """The tenant's vector store storage now, and what a day of it costs."""
    used = store.tenant_usage_bytes(session, tenant)
    return StorageReport(
        usage_bytes=used,
        billable_bytes=max(0, used - limits.VECTOR_STORE_FREE_BYTES),
        usd_per_day=storage_cost_usd(used),
    )
