"""Unit-of-work helpers for the run slice's unit tests: a migrated SQLite database, a `Ctx` on one of its
transactions, a thread with a user message and a run on it, without a server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.orm import Session

from emulator import migrate
from emulator.context import Ctx
from emulator.db import Database
from emulator.ids import IdFactory
from emulator.runs.state import RunStatus
from emulator.settings import Settings
from emulator.store import messages, runs, threads
from emulator.store.rows import Run
from emulator.stub_model import Model, StubModel

T = TypeVar("T")
TENANT = "tenant_unit"


class Unit:
    """Runs functions of a `Ctx` as units of work (each committed on success) on one database."""

    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.settings = settings
        self.ids = IdFactory(7)
        self.model: Model = StubModel()

    def __call__(self, work: Callable[[Ctx], T]) -> T:
        def in_transaction(session: Session) -> T:
            ctx = Ctx(session=session, tenant=TENANT, settings=self.settings, ids=self.ids, model=self.model)
            return work(ctx)

        return self.database.run_in_worker(in_transaction, write=True)


@contextmanager
def sqlite_unit(tmp_path: Path, **settings: Any) -> Iterator[Unit]:
    database = Database.connect(f"sqlite:///{tmp_path / 'runs.db'}")
    try:
        migrate.upgrade(database.engine)
        yield Unit(database, Settings(data_dir=tmp_path, **settings))
    finally:
        database.dispose()


def new_run(ctx: Ctx, text: str = "hello", **fields: Any) -> Run:
    """A thread with one user message, and a queued run on it that holds the thread."""
    thread_id = ctx.ids.new("thread")
    threads.create(ctx.session, tenant=TENANT, thread_id=thread_id, now=ctx.now, tool_resources={}, metadata={})
    messages.create(
        ctx.session, tenant=TENANT, message_id=ctx.ids.new("message"), thread_id=thread_id, now=ctx.now,
        role="user", content=[{"type": "text", "text": {"value": text, "annotations": []}}], attachments=[],
        metadata={},
    )
    run = runs.create(
        ctx.session, **{
            "id": ctx.ids.new("run"), "tenant": TENANT, "thread_id": thread_id, "assistant_id": "asst_unit",
            "created_at": ctx.now, "status": RunStatus.QUEUED.value, "model": "gpt-4o", "instructions": "",
            "tools": [], "tool_resources": {}, "metadata_": {}, "temperature": None, "top_p": None,
            "max_prompt_tokens": None, "max_completion_tokens": None,
            "truncation_strategy": {"type": "auto", "last_messages": None}, "tool_choice": "auto",
            "parallel_tool_calls": True, "response_format": "auto", "reasoning_effort": None,
            "expires_at": ctx.now + 600, "observations": 0, "prompt_tokens": 0, "completion_tokens": 0,
            **fields,
        },
    )
    assert runs.claim_thread(ctx.session, thread_id, run.id)
    return run


def active_run_of(ctx: Ctx, run: Run) -> str | None:
    """The run's thread's active run, as committed so far and changed in this unit of work."""
    found: str | None = ctx.session.execute(
        text("SELECT active_run_id FROM threads WHERE id = :thread_id"), {"thread_id": run.thread_id}
    ).scalar()
    return found
