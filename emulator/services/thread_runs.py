"""A thread's runs and a run's steps, as the runs routes list, read and modify them: each as the client sees it
now (the run observed first, `services.runs.observed`). The run lifecycle itself is `services.runs`."""

from __future__ import annotations

from typing import Any

from emulator.context import Ctx
from emulator.schemas.runs import ModifyRun
from emulator.services import runs, threads
from emulator.store import runs as store
from emulator.store.pagination import Page, PageRequest
from emulator.store.rows import Run, RunStep


def list_page(ctx: Ctx, thread_id: str, page: PageRequest) -> Page[Any]:
    thread = threads.get_live(ctx, thread_id)
    runs.observe_active(ctx, thread)
    return store.list_page(ctx.session, thread_id, page)


def update(ctx: Ctx, thread_id: str, run_id: str, body: ModifyRun) -> Run:
    run = runs.observed(ctx, thread_id, run_id)
    if "metadata" in body.model_fields_set:
        run.metadata_ = body.metadata or {}
    return run


def list_steps(ctx: Ctx, thread_id: str, run_id: str, page: PageRequest) -> Page[Any]:
    run = runs.observed(ctx, thread_id, run_id)
    return store.list_steps(ctx.session, run.id, page)


def get_step(ctx: Ctx, thread_id: str, run_id: str, step_id: str) -> RunStep:
    run = runs.observed(ctx, thread_id, run_id)
    return store.get_step(ctx.session, run.id, step_id)
