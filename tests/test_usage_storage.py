"""The usage report's vector-store storage: GB-days by the emulator clock, priced after the free GB."""

from __future__ import annotations

import httpx
from openai import OpenAI

DAY = 86_400


def test_storage_gb_days_follow_the_clock_and_the_free_gigabyte_is_free(client: OpenAI, control: httpx.Client) -> None:
    store = client.vector_stores.create(name="kb")
    client.vector_stores.files.upload_and_poll(vector_store_id=store.id, file=("a.txt", b"alpha beta gamma " * 50))
    usage_bytes = client.vector_stores.retrieve(store.id).usage_bytes
    assert usage_bytes > 0
    created = client.vector_stores.retrieve(store.id).created_at
    control.post("/clock/advance", json={"seconds": 2 * DAY}).raise_for_status()
    report = control.get("/usage", params={"start": created, "end": created + 2 * DAY}).json()
    assert abs(report["vector_store_gb_days"] - usage_bytes / 1e9 * 2) < 1e-12
    assert report["vector_store_cost_usd"] == 0.0, "far below the free gigabyte"
    assert report["total_cost_usd"] == report["cost_usd"]
    half = control.get("/usage", params={"start": created, "end": created + DAY}).json()
    assert abs(half["vector_store_gb_days"] - usage_bytes / 1e9) < 1e-12
