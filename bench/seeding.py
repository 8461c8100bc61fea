"""The emulator's data for the scenarios: threads and 1,000 messages made through the API, and a thread of
100,000 messages, one made through the API and the rest added through the store (`emulator.store`) while the
server keeps running on the same database (SQLite in WAL mode and PostgreSQL both take a second writer)."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadgen import API_KEY, api, api_many, emu_request

BIG_THREAD_MESSAGES = 100_000
BATCH = 10_000
"""Rows per transaction of the store's seeding: each holds the database's write lock for well under a second."""


@dataclass(frozen=True)
class Seeded:
    assistant_id: str
    message_threads: list[str]
    """100 threads for message create."""
    small_thread: str
    small_messages: list[dict[str, Any]]
    """The 1,000 messages of `small_thread`, as the API returned them."""
    big_thread: str
    seconds_1k: float
    seconds_100k: float


def create_threads(port: int, count: int) -> list[str]:
    return [t["id"] for t in api_many(port, [emu_request("POST", "/v1/threads", {})] * count)]


def seed(port: int, database_url: str | None, data_dir: Path) -> Seeded:
    assistant = api(port, "POST", "/v1/assistants", {"model": "gpt-4o", "name": "bench"})
    targets = create_threads(port, 100)
    t_small = api(port, "POST", "/v1/threads", {})["id"]
    t_big = api(port, "POST", "/v1/threads", {})["id"]
    started = time.monotonic()
    small_msgs = api_many(port, [emu_request("POST", f"/v1/threads/{t_small}/messages",
                                             {"role": "user", "content": f"message {i}"})
                                 for i in range(1000)], 8)
    seconds_1k = time.monotonic() - started
    template = api(port, "POST", f"/v1/threads/{t_big}/messages",
                   {"role": "user", "content": "a message of the 100k thread"})
    seconds_100k = add_messages_like(database_url, data_dir, template, BIG_THREAD_MESSAGES - 1)
    page = api(port, "GET", f"/v1/threads/{t_big}/messages?limit=100&order=asc")
    if not page["has_more"] or len(page["data"]) != 100:
        raise RuntimeError("the seeded thread does not list as expected")
    return Seeded(assistant["id"], targets, t_small, small_msgs, t_big, seconds_1k, seconds_100k)


def add_messages_like(database_url: str | None, data_dir: Path, template: dict[str, Any], count: int) -> float:
    """Add `count` messages like `template` (a message as the API returned it) to its thread through the store:
    the first with `messages.create`, the others as copies of its row with fresh ids (`store.bulk`, a batch per
    transaction). Returns the seconds it took."""
    from emulator.context import tenant_of
    from emulator.db import Database
    from emulator.ids import PREFIXES
    from emulator.settings import Settings
    from emulator.store import bulk, messages

    def new_id() -> str:
        return f"{PREFIXES['message']}{secrets.token_hex(12)}"

    start = time.monotonic()
    db = Database.connect(Settings(data_dir=data_dir, database_url=database_url).resolved_database_url())
    try:
        with db.transaction() as session:
            first = messages.create(
                session, tenant=tenant_of(API_KEY), message_id=new_id(), thread_id=template["thread_id"],
                now=template["created_at"], role=template["role"], content=template["content"],
                attachments=template["attachments"], metadata=template["metadata"],
            )
        added = 1
        while added < count:
            ids = [new_id() for _ in range(min(BATCH, count - added))]
            with db.transaction() as session:
                if bulk.insert_copies(session, messages.MESSAGES, first.id, ids) != len(ids):
                    raise RuntimeError("the store did not copy the template message as many times as asked")
            added += len(ids)
    finally:
        db.dispose()
    return time.monotonic() - start
