"""A run never poisons its reads, and work that may crash its worker is not blindly run again.

Reads and runners advance runs (`executor.observe`, `executor.settle`): the model call, the tools and the code cells
run inside the reader's (or the runner's) unit of work. If any of it raises something unexpected, failing the
request would only roll the run back to where it was, and every later read would meet the same failure. Instead the
unit of work is rolled back, the run ends `failed` with `server_error` in a unit of work of its own (its open step
and message closed, its thread freed; logged with the run id and the traceback), and the read runs again: it answers
the failed run.

Risky work, work that may take its worker down with it (a code cell, an upstream model call), starts only once
it is on record (`runs.outside`): the run's claim (a lease) is committed with `unfinished_work` set before the
work runs, and the transaction that records the work's result clears it.
A crash in between leaves the mark. The next unit of work that finds it, once the claim no longer holds (its
lease passed, or its process is gone), counts an interruption and the run resumes; at the second interruption
the run fails with `server_error` instead of running the work a third time.

A failure uses `db.RecordThenRetry`: the unit of work is run again after the failure's record commits, in the
same worker thread and context, so the record tells the next run what it did through a context variable.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
from collections.abc import Callable
from contextvars import ContextVar

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from emulator.commits import CHANGES, write_changes
from emulator.context import Ctx
from emulator.db import LeaveEventLoop, RecordThenRetry
from emulator.errors import SERVER_ERROR_MESSAGE
from emulator.runs import code_interpreter, executor, leases, outside, phases, schedule
from emulator.runs.events import Event
from emulator.runs.state import RunStatus, can_move, is_terminal
from emulator.store import runs as store
from emulator.store.rows import Run

log = logging.getLogger("emulator.runs")

INTERRUPTIONS_BEFORE_FAILING = 2

_broken_here: ContextVar[frozenset[str]] = ContextVar("broken_here", default=frozenset())
"""Runs that broke while this worker advanced them: the unit of work run again leaves them as they are."""

_NOT_THE_RUNS_FAULT = (LeaveEventLoop, RecordThenRetry, OperationalError, sqlite3.OperationalError)
"""Raised while advancing a run, but not because of the run: the unit of work moves to a worker thread, records
something first, or meets a busy, deadlocked or unreachable database. They go up as they are."""


def observe(ctx: Ctx, run: Run) -> list[Event]:
    """`executor.observe`, guarded: the run either advances, or fails once (see the module)."""
    return _guarded(ctx, run, executor.observe, by_runner=False)


def advance(ctx: Ctx, run: Run) -> list[Event]:
    """For a runner (`runs.runner`): the run settled as far as it can now, guarded the same way; a run that a
    stream drives, or whose work runs elsewhere, is left alone."""
    return _guarded(ctx, run, _unwatched, by_runner=True)


def _unwatched(ctx: Ctx, run: Run) -> list[Event]:
    if executor.is_resting(run) or leases.held(run):
        return []
    return executor.settle(ctx, run, by_runner=True)


def _guarded(ctx: Ctx, run: Run, move: Callable[[Ctx, Run], list[Event]], *, by_runner: bool) -> list[Event]:
    if run.id in _broken_here.get():
        return []
    try:
        produced = phases.expire_if_due(ctx, run) or _resume(ctx, run)
        if not produced:
            produced = move(ctx, run)
        schedule.plan(ctx, run, stalled=by_runner and not produced)
        write_changes(ctx.session)  # a change the database refuses is the run's failure too
        return produced
    except _NOT_THE_RUNS_FAULT:
        raise
    except Exception as error:
        record = functools.partial(_fail_broken, ctx, run.id, error)
        raise RecordThenRetry(record, f"run {run.id} broke while advancing") from error


def _resume(ctx: Ctx, run: Run) -> list[Event]:
    """Before advancing: a mark whose claim no longer holds is an interruption (the run fails at the second)."""
    if run.unfinished_work is None or is_terminal(run.status):
        return []
    if leases.held(run) or outside.waiting(run):
        return []
    return _count_interruption(ctx, run)


def _count_interruption(ctx: Ctx, run: Run) -> list[Event]:
    work, run.unfinished_work = run.unfinished_work, None
    run.interruptions += 1
    log.warning("run %s: its %s was interrupted (%d time(s)): the server stopped while running it",
                run.id, work, run.interruptions)
    if run.interruptions < INTERRUPTIONS_BEFORE_FAILING:
        return []
    message = (f"The run's {work} was interrupted {run.interruptions} times (the server stopped while running it) "
               "and is not run again.")
    return phases.fail(ctx, run, "server_error", message)


def _own_ctx(ctx: Ctx, session: Session) -> Ctx:
    return Ctx(session=session, tenant=ctx.tenant, settings=ctx.settings, ids=ctx.ids, model=ctx.model,
               include=ctx.include, db=ctx.db)


def _fail_broken(ctx: Ctx, run_id: str, error: Exception, session: Session) -> None:
    log.error("run %s failed while advancing: it ends failed (server_error)", run_id, exc_info=error)
    _broken_here.set(_broken_here.get() | {run_id})
    code_interpreter.forget_results(run_id)
    try:
        run = store.get_by_id_thread_first(session, run_id)
        if run is not None and can_move(RunStatus(run.status), RunStatus.FAILED):
            run.unfinished_work = None  # risky work that raised has ended; it did not take the worker down
            phases.fail(_own_ctx(ctx, session), run, "server_error", SERVER_ERROR_MESSAGE)
            write_changes(session)
    except _NOT_THE_RUNS_FAULT:
        raise
    except Exception:
        log.exception("run %s could not be failed: reads answer it as it is", run_id)
        session.info.pop(CHANGES, None)
        session.rollback()
