"""What the usage report reads: a tenant's runs (tokens, models), their code_interpreter steps, and its vector
stores with their sizes. Reads only, of a few columns each: the report renders figures, not objects."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from emulator.store import statements, vector_store_tables
from emulator.tables import RunRow, RunStepRow

_RUNS = RunRow.__table__.c
_STEPS = RunStepRow.__table__.c
_STORES = vector_store_tables.VECTOR_STORES.c
_FILES = vector_store_tables.VECTOR_STORE_FILES.c
_IN_BATCH = 500


@dataclass(frozen=True)
class RunUsage:
    """What a run used: the tokens of its model, and its tool resources (where code sessions are recorded)."""

    id: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    tool_resources: dict[str, Any]
    metadata: dict[str, Any]


@dataclass(frozen=True)
class StoreUsage:
    """A vector store's life (from its creation to its expiry, if it has expired) and its size now."""

    id: str
    created_at: int
    expired_at: int | None
    usage_bytes: int


def runs(session: Session, tenant: str, *, start: int | None, end: int | None) -> list[RunUsage]:
    """The tenant's runs created in `[start, end)` (either bound open if None), in creation order."""
    query = select(
        _RUNS.id, _RUNS.model, _RUNS.prompt_tokens, _RUNS.completion_tokens, _RUNS.tool_resources, _RUNS["metadata"]
    ).where(_RUNS.tenant == tenant)
    if start is not None:
        query = query.where(_RUNS.created_at >= start)
    if end is not None:
        query = query.where(_RUNS.created_at < end)
    rows = statements.all_rows(session, query.order_by(_RUNS.seq), {})
    return [
        RunUsage(
            row.id, row.model, int(row.prompt_tokens), int(row.completion_tokens), row.tool_resources or {},
            row.metadata or {},
        )
        for row in rows
    ]


def tool_call_details(session: Session, run_ids: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
    """`(run id, step details)` of the runs' tool-call steps."""
    found: list[tuple[str, dict[str, Any]]] = []
    for start in range(0, len(run_ids), _IN_BATCH):
        query = select(_STEPS.run_id, _STEPS.step_details).where(
            _STEPS.run_id.in_(list(run_ids[start : start + _IN_BATCH])), _STEPS.type == "tool_calls"
        )
        found.extend((row.run_id, row.step_details or {}) for row in statements.all_rows(session, query, {}))
    return found


_STORES_OF_TENANT = statements.prepared(
    select(
        _STORES.id,
        _STORES.created_at,
        _STORES.expired_at,
        func.coalesce(func.sum(_FILES.usage_bytes), 0).label("usage_bytes"),
    )
    .select_from(
        vector_store_tables.VECTOR_STORES.outerjoin(
            vector_store_tables.VECTOR_STORE_FILES, _FILES.vector_store_id == _STORES.id
        )
    )
    .where(_STORES.tenant == bindparam("tenant"))
    .group_by(_STORES.seq, _STORES.id, _STORES.created_at, _STORES.expired_at)
    .order_by(_STORES.seq)
)


def stores(session: Session, tenant: str) -> list[StoreUsage]:
    """The tenant's vector stores (a deleted one is gone) with the usage bytes of their files now."""
    rows = statements.all_rows(session, _STORES_OF_TENANT, {"tenant": tenant})
    return [StoreUsage(row.id, row.created_at, row.expired_at, int(row.usage_bytes)) for row in rows]
