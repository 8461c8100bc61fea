"""Runs and run steps, and the thread's active-run claim that keeps one active run per thread.

Runs, steps and the messages a run writes are records (`store.records`): the executor changes their attributes
and the unit of work writes the changed columns (a run's phases are the emulator's busiest writes).

Lock order (PostgreSQL): a unit of work that may move a run locks the run's thread first, then the run. A run
that moves may free its thread or add a message to it (whose foreign key takes a share lock on the thread), and
creating a run locks the thread and then the run that holds it: two units of work taking them in opposite
orders deadlock.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

import sqlalchemy
from sqlalchemy import Engine, Select, bindparam, select, update
from sqlalchemy.orm import Session

from emulator.errors import NotFound
from emulator.store import statements
from emulator.store.messages import MESSAGES
from emulator.store.pagination import Listing, Page, PageRequest
from emulator.store.records import Table
from emulator.store.rows import Message, Run, RunStep
from emulator.store.threads import THREADS
from emulator.tables import FileRow, MessageRow, RunRow, RunStepRow, ThreadRow

RUNS = Table(
    Run, announces="id", announces_inserts=False, quiet=frozenset({"lease_until", "observations", "unfinished_work"})
)
"""A run's changes wake who waits for it (`runs.hub`), but for its bookkeeping: who holds it, how often it was
read, what work it has out. Nobody waits for a run being made: its insert costs no notification."""
STEPS = Table(RunStep, announces="run_id")

_thread_table = cast(sqlalchemy.Table, ThreadRow.__table__)
_threads = _thread_table.c
_CLAIM = statements.prepared(
    update(_thread_table)
    .where(_threads.id == bindparam("thread_id"), _threads.active_run_id.is_(None))
    .values(active_run_id=bindparam("run_id"))
)
_RELEASE = statements.prepared(
    update(_thread_table)
    .where(_threads.id == bindparam("thread_id"), _threads.active_run_id == bindparam("run_id"))
    .values(active_run_id=None)
)


def claim_thread(session: Session, thread_id: str, run_id: str) -> bool:
    """Make `run_id` the thread's active run, atomically; False when another run already holds it."""
    if statements.execute(session, _CLAIM, {"thread_id": thread_id, "run_id": run_id}) != 1:
        return False
    THREADS.synchronize(session, thread_id, active_run_id=run_id)
    return True


def release_thread(session: Session, thread_id: str, run_id: str) -> None:
    if statements.execute(session, _RELEASE, {"thread_id": thread_id, "run_id": run_id}) == 1:
        THREADS.synchronize(session, thread_id, active_run_id=None)


_RENEW_CLAIM = statements.prepared(
    update(RunRow)
    .where(RunRow.id == bindparam("run_id"), RunRow.unfinished_work.is_not(None))
    .values(lease_until=bindparam("until"))
)


def renew_claim(session: Session, run_id: str, until: float) -> bool:
    """Extend the lease of a run whose work runs outside its unit of work (`runs.outside`), as long as the work
    is on record; False when it no longer is."""
    return statements.execute(session, _RENEW_CLAIM, {"run_id": run_id, "until": until}) > 0


_run_table = cast(sqlalchemy.Table, RunRow.__table__)
_runs = _run_table.c
_DUE = (
    select(_runs.id)
    .where(_runs.due_at <= bindparam("now"),
           sqlalchemy.or_(_runs.lease_until.is_(None), _runs.lease_until < bindparam("now")))
    .order_by(_runs.due_at)
    .limit(bindparam("limit", type_=sqlalchemy.Integer))
    .with_for_update(skip_locked=True)
)
_CLAIM_DUE = (
    update(_run_table).where(_runs.id.in_(_DUE.scalar_subquery())).values(due_at=bindparam("until"))
    .returning(_runs.id)
)


def claim_due(session: Session, now: float, hold_seconds: float, limit: int) -> list[str]:
    """Claim for a runner up to `limit` runs that are due (`due_at` passed) and that nobody holds (no live
    lease): their `due_at` moves `hold_seconds` on, so that no other runner takes them meanwhile and a runner
    that dies leaves them due again. One statement (Core, compiled once); on PostgreSQL rows another runner is
    claiming are skipped (SQLite serializes writers). Returns the ids claimed."""
    params = {"now": now, "until": now + hold_seconds, "limit": limit}
    return list(session.connection().execute(_CLAIM_DUE, params).scalars())


_BRING_DUE_FORWARD = (
    update(_run_table).where(_runs.due_at.is_not(None)).values(due_at=_runs.due_at - bindparam("seconds"))
)
_BRING_TENANT_DUE_FORWARD = _BRING_DUE_FORWARD.where(_runs.tenant == bindparam("of_tenant"))


def bring_due_forward(session: Session, seconds: int, tenant: str | None = None) -> int:
    """A clock moved `seconds` on (the tenant's; every tenant's for None): the runs' due times (wall seconds,
    computed from their tenant's time) come `seconds` sooner. How many runs were due at some time."""
    if tenant is None:
        return statements.execute(session, _BRING_DUE_FORWARD, {"seconds": seconds})
    return statements.execute(session, _BRING_TENANT_DUE_FORWARD, {"seconds": seconds, "of_tenant": tenant})


_RENEW_LEASES = (
    update(RunRow)
    .where(RunRow.id.in_(bindparam("run_ids", expanding=True)), RunRow.lease_until.is_not(None))
    .values(lease_until=bindparam("until"))
)


def renew_leases(session: Session, run_ids: list[str], until: float) -> int:
    """Extend the leases the runs hold (a run no longer leased stays so); how many were extended."""
    return statements.execute(session, _RENEW_LEASES, {"run_ids": run_ids, "until": until})


_STATUSES = select(RunRow.id, RunRow.status).where(RunRow.id.in_(bindparam("run_ids", expanding=True)))


def statuses(session: Session, run_ids: list[str]) -> dict[str, str]:
    """The runs' statuses (a run that is gone is left out)."""
    rows = statements.all_rows(session, cast(Select[Any], _STATUSES), {"run_ids": run_ids})
    return {row.id: row.status for row in rows}


class SqliteCommits:
    """Whether any connection has committed to a SQLite database since the last look: `PRAGMA data_version`
    on a connection of its own (outside any transaction: SQLite answers from its pager, reading no table)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._connection: Any = None
        self._version: int | None = None

    def since_last_look(self) -> bool:
        if self._connection is None:
            self._connection = self._engine.raw_connection()
        (version,) = self._connection.driver_connection.execute("PRAGMA data_version").fetchone()
        changed: bool = version != self._version
        self._version = version
        return changed

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


_RUN_STARTS_WITHOUT = dict.fromkeys(
    ("started_at", "cancelled_at", "failed_at", "completed_at", "required_action", "last_error",
     "incomplete_details", "pending_turn", "lease_until", "unfinished_work", "due_at")
)


def create(session: Session, **fields: Any) -> Run:
    """Insert a run: `fields` gives every column but those a queued run has not reached yet."""
    return RUNS.insert(session, {**_RUN_STARTS_WITHOUT, "interruptions": 0, **fields})


_BY_ID = statements.prepared(
    statements.select_columns(
        RunRow, RunRow.tenant == bindparam("tenant"), RunRow.thread_id == bindparam("thread_id"),
        RunRow.id == bindparam("run_id"),
    ).with_for_update()
)
_ANY_BY_ID = statements.prepared(statements.select_columns(RunRow, RunRow.id == bindparam("run_id")).with_for_update())


def get(session: Session, tenant: str, thread_id: str, run_id: str) -> Run:
    """The run, locked (PostgreSQL): every read of a run may move it (`executor.observe`)."""
    params = {"tenant": tenant, "thread_id": thread_id, "run_id": run_id}
    row = RUNS.load(session, _BY_ID, params)
    if row is None:
        raise NotFound.object("run", run_id)
    return row


def get_by_id(session: Session, run_id: str) -> Run | None:
    """Any tenant's run, locked (PostgreSQL): for code that already knows the run (a stream, a thread's holder)."""
    return RUNS.load(session, _ANY_BY_ID, {"run_id": run_id})


_THREAD_OF_RUN_LOCKED = statements.prepared(
    select(_threads.id)
    .where(_threads.id == select(RunRow.thread_id).where(RunRow.id == bindparam("run_id")).scalar_subquery())
    .with_for_update()
)


def get_by_id_thread_first(session: Session, run_id: str) -> Run | None:
    """`get_by_id` for code that knows only the run (a stream), with its thread locked first (the lock order
    above). SQLite serializes write transactions whole and needs neither lock."""
    if not statements.on_sqlite(session):
        statements.first(session, _THREAD_OF_RUN_LOCKED, {"run_id": run_id})
    return get_by_id(session, run_id)


_THREAD_LOCKED = statements.prepared(select(_threads.id).where(_threads.id == bindparam("thread_id")).with_for_update())


def lock_thread(session: Session, thread_id: str) -> None:
    """Lock the thread before one of its runs (the lock order above), where the thread was read unlocked."""
    if not statements.on_sqlite(session):
        statements.first(session, _THREAD_LOCKED, {"thread_id": thread_id})


_OF_THREAD = Listing(RUNS, statements.select_columns(RunRow, RunRow.thread_id == bindparam("thread_id")))


def list_page(session: Session, thread_id: str, page: PageRequest) -> Page[Run]:
    return _OF_THREAD.page(session, page, {"thread_id": thread_id})


_STEP_STARTS_WITHOUT = dict.fromkeys(
    ("last_error", "usage", "cancelled_at", "completed_at", "expired_at", "failed_at")
)


def create_step(session: Session, **fields: Any) -> RunStep:
    """Insert a step: `fields` gives every column but those an open step has not reached yet."""
    return STEPS.insert(session, {**_STEP_STARTS_WITHOUT, **fields})


_STEP = statements.prepared(
    statements.select_columns(
        RunStepRow, RunStepRow.run_id == bindparam("run_id"), RunStepRow.id == bindparam("step_id")
    )
)
_STEPS_OF_RUN = statements.prepared(
    statements.select_columns(RunStepRow, RunStepRow.run_id == bindparam("run_id")).order_by(RunStepRow.seq)
)
_STEPS_LISTING = Listing(STEPS, statements.select_columns(RunStepRow, RunStepRow.run_id == bindparam("run_id")))


def get_step(session: Session, run_id: str, step_id: str) -> RunStep:
    row = STEPS.load(session, _STEP, {"run_id": run_id, "step_id": step_id})
    if row is None:
        raise NotFound.object("run step", step_id)
    return row


def steps_of(session: Session, run_id: str) -> list[RunStep]:
    return STEPS.load_all(session, _STEPS_OF_RUN, {"run_id": run_id})


def list_steps(session: Session, run_id: str, page: PageRequest) -> Page[RunStep]:
    return _STEPS_LISTING.page(session, page, {"run_id": run_id})


_HISTORY = statements.prepared(
    statements.select_columns(
        MessageRow, MessageRow.thread_id == bindparam("thread_id"), MessageRow.status != "in_progress"
    ).order_by(MessageRow.seq)
)
_OPEN_MESSAGE = statements.prepared(
    statements.select_columns(MessageRow, MessageRow.run_id == bindparam("run_id"), MessageRow.status == "in_progress")
)


def thread_history(session: Session, thread_id: str) -> list[Message]:
    """Every finished message of the thread, oldest first: what a model call may see."""
    return MESSAGES.load_all(session, _HISTORY, {"thread_id": thread_id})


def open_message(session: Session, run_id: str) -> Message | None:
    return MESSAGES.load(session, _OPEN_MESSAGE, {"run_id": run_id})


_ATTACHMENTS = statements.prepared(
    select(MessageRow.attachments).where(MessageRow.thread_id == bindparam("thread_id")).order_by(MessageRow.seq)
)


def attachments_of_thread(session: Session, thread_id: str) -> list[list[dict[str, Any]]]:
    """The `attachments` of every message of the thread, oldest first (for the tools that read them)."""
    return [row[0] or [] for row in statements.all_rows(session, _ATTACHMENTS, {"thread_id": thread_id})]


def stored_files(session: Session, tenant: str, file_ids: Iterable[str]) -> list[tuple[str, str, str]]:
    """`(id, filename, storage_path)` of the tenant's files among `file_ids` (the inputs of a code cell)."""
    statement = cast("Select[Any]", select(FileRow.id, FileRow.filename, FileRow.storage_path)).where(
        FileRow.tenant == tenant, FileRow.id.in_(list(file_ids))
    )
    return [(row.id, row.filename, row.storage_path) for row in statements.all_rows(session, statement, {})]


def reread(session: Session, run: Run) -> bool:
    """Read the run's row again (locked): its record takes the row's values, as another transaction left them
    (for work done outside the unit of work's transaction); False when the row is gone. Its thread is locked
    first (the lock order above)."""
    if not statements.on_sqlite(session):
        statements.first(session, _THREAD_OF_RUN_LOCKED, {"run_id": run.id})
    row = statements.first(session, _ANY_BY_ID, {"run_id": run.id})
    if row is None:
        return False
    RUNS.synchronize(session, run.id, **{key: value for key, value in row._asdict().items() if key in RUNS.keys})
    return True


def moving_on(session: Session, run_ids: Iterable[str]) -> set[str]:
    """Those of `run_ids` that are no longer `in_progress` (cancelled, expired, gone): their work stops."""
    wanted = set(run_ids)
    if not wanted:
        return set()
    statement = select(RunRow.id).where(RunRow.id.in_(wanted), RunRow.status == "in_progress")
    still = {row[0] for row in statements.all_rows(session, statement, {})}
    return wanted - still
