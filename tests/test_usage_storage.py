"""The usage report's vector-store storage: GB-days by the emulator clock, priced after the free GB."""

from __future__ import annotations

import httpx
import pytest
from openai import OpenAI

from emulator.services import usage
from emulator.store.usage import StoreUsage
from tests import storage
from tests.server import RunningServer

DAY = 86_400
GB = 1_000_000_000


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


def test_storage_past_the_free_gigabyte_costs_ten_cents_per_gb_day(
    client: OpenAI, control: httpx.Client, server: RunningServer
) -> None:
    """3 GB kept for 2 days: 6 GB-days, of which 2 are free (1 GB per day), so 4 billable at $0.10."""
    store = client.vector_stores.create(name="big")
    done = client.vector_stores.files.upload_and_poll(vector_store_id=store.id, file=("a.txt", b"alpha beta " * 50))
    storage.execute(
        server,
        "UPDATE vector_store_files SET usage_bytes = :used WHERE vector_store_id = :store AND id = :file",
        used=3 * GB,
        store=store.id,
        file=done.id,
    )
    assert client.vector_stores.retrieve(store.id).usage_bytes == 3 * GB
    created = store.created_at
    control.post("/clock/advance", json={"seconds": 2 * DAY}).raise_for_status()
    report = control.get("/usage", params={"start": created, "end": created + 2 * DAY}).json()
    assert report["vector_store_gb_days"] == pytest.approx(6.0)
    assert report["vector_store_cost_usd"] == pytest.approx(0.40)
    assert report["total_cost_usd"] == pytest.approx(report["cost_usd"] + 0.40)
    one_day = control.get("/usage", params={"start": created, "end": created + DAY}).json()
    assert one_day["vector_store_cost_usd"] == pytest.approx(0.20)


def test_the_free_gigabyte_is_per_tenant_and_day_and_expired_stores_stop_counting() -> None:
    start = 1_000_000
    stores = [
        StoreUsage("vs_a", created_at=start, expired_at=None, usage_bytes=GB // 2),
        StoreUsage("vs_b", created_at=start + DAY, expired_at=start + 3 * DAY, usage_bytes=2 * GB),
        StoreUsage("vs_c", created_at=start + 10 * DAY, expired_at=None, usage_bytes=5 * GB),
    ]
    report = usage.storage(stores, start=None, end=start + 4 * DAY, now=start + 5 * DAY)
    # a: 0.5 GB x 4 days; b: 2 GB x 2 days (expired); c: not yet created. Free: 1 GB x 4 days.
    assert report["vector_store_gb_days"] == pytest.approx(2.0 + 4.0)
    assert report["vector_store_cost_usd"] == pytest.approx((6.0 - 4.0) * 0.10)
    before_now = usage.storage(stores, start=start, end=start + 30 * DAY, now=start + DAY)
    assert before_now["vector_store_gb_days"] == pytest.approx(0.5), "the range ends now"
    assert before_now["vector_store_cost_usd"] == 0.0
