"""The usage and cost report of a tenant: tokens per model, runs, code_interpreter sessions, vector store
storage and cost in USD.

Prices come from the model table (`emulator.model_catalog`, per million tokens, SPEC.md), the code_interpreter
session price and the storage price (SPEC.md: 1 GB free, then $0.10 per GB per day; the free gigabyte is the
tenant's, over all its stores, as the real pricing applies it per organisation; a GB is 10**9 bytes). Runs can
be grouped by one of their metadata keys (e.g. `user_id`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from emulator import limits, model_catalog
from emulator.context import Ctx
from emulator.runs import code_interpreter
from emulator.store import usage as store
from emulator.store.usage import RunUsage, StoreUsage

_UNGROUPED = "(none)"


def _cost(model: str, prompt_tokens: int, completion_tokens: int) -> float:
    info = model_catalog.info_or_fallback(model)
    return (prompt_tokens * info.input_usd_per_million + completion_tokens * info.output_usd_per_million) / 1e6


def _totals(rows: list[RunUsage]) -> dict[str, Any]:
    per_model: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0, "runs": 0, "cost_usd": 0.0}
    )
    for row in rows:
        entry = per_model[row.model]
        entry["prompt_tokens"] += row.prompt_tokens
        entry["completion_tokens"] += row.completion_tokens
        entry["total_tokens"] += row.prompt_tokens + row.completion_tokens
        entry["runs"] += 1
    for model, entry in per_model.items():
        entry["cost_usd"] = round(_cost(model, entry["prompt_tokens"], entry["completion_tokens"]), 6)
    return {
        "models": dict(sorted(per_model.items())),
        "runs": len(rows),
        "cost_usd": round(sum(entry["cost_usd"] for entry in per_model.values()), 6),
    }


def storage(stores: Sequence[StoreUsage], *, start: int | None, end: int | None, now: int) -> dict[str, Any]:
    """Vector-store GB-days in the range and their price (1 GB free per day, then $0.10 per GB-day).

    Sizes are not kept over time: each live store counts its current `usage_bytes` for the part of the range
    between its creation and now (or its expiry); a deleted store no longer counts. The range ends now at the
    latest, and starts by default at the first store's creation.
    """
    range_end = min(end, now) if end is not None else now
    range_start = start if start is not None else min((row.created_at for row in stores), default=range_end)
    gb_days = 0.0
    for row in stores:
        alive_from = max(row.created_at, range_start)
        alive_to = min(row.expired_at or range_end, range_end)
        if alive_to > alive_from:
            gb_days += row.usage_bytes / limits.BYTES_PER_GB * (alive_to - alive_from) / limits.SECONDS_PER_DAY
    free_gb = limits.VECTOR_STORE_FREE_BYTES / limits.BYTES_PER_GB
    free_gb_days = free_gb * max(range_end - range_start, 0) / limits.SECONDS_PER_DAY
    billable = max(0.0, gb_days - free_gb_days)
    return {
        "vector_store_gb_days": round(gb_days, 9),
        "vector_store_cost_usd": round(billable * limits.VECTOR_STORE_USD_PER_GB_DAY, 6),
    }


def _code_sessions(ctx: Ctx, runs: list[RunUsage]) -> int:
    """The code_interpreter sessions the runs started, $0.03 each: a session lives per thread across runs (its
    first run records it). A run from before sessions were recorded counts one if it ran code."""
    recorded = sum(len(row.tool_resources.get(code_interpreter.SESSIONS, [])) for row in runs)
    legacy = [row.id for row in runs if code_interpreter.SESSIONS not in row.tool_resources]
    with_code = {
        run_id
        for run_id, details in (store.tool_call_details(ctx.session, legacy) if legacy else [])
        if any(call["type"] == "code_interpreter" for call in details.get("tool_calls", []))
    }
    return recorded + len(with_code)


def report(ctx: Ctx, *, start: int | None, end: int | None, group_by: str | None) -> dict[str, Any]:
    rows = store.runs(ctx.session, ctx.tenant, start=start, end=end)
    totals = _totals(rows)
    stored = storage(store.stores(ctx.session, ctx.tenant), start=start, end=end, now=ctx.now)
    sessions = _code_sessions(ctx, rows)
    code_cost = round(sessions * limits.CODE_INTERPRETER_SESSION_USD, 6)
    body: dict[str, Any] = {
        "object": "emulator.usage",
        "start": start,
        "end": end,
        **totals,
        "code_interpreter_sessions": sessions,
        "code_interpreter_cost_usd": code_cost,
        **stored,
        "total_cost_usd": round(totals["cost_usd"] + code_cost + stored["vector_store_cost_usd"], 6),
    }
    if group_by is not None:
        key = group_by.removeprefix("metadata.")
        groups: dict[str, list[RunUsage]] = defaultdict(list)
        for row in rows:
            groups[row.metadata.get(key, _UNGROUPED)].append(row)
        body["group_by"] = group_by
        body["groups"] = {value: _totals(members) for value, members in sorted(groups.items())}
    return body
