"""A thread's active run (its holder): one that expired unobserved still holds the thread until someone looks."""

from __future__ import annotations

from emulator.context import Ctx
from emulator.runs import executor
from emulator.store import runs as store
from emulator.store.rows import Thread


def release_expired_holder(ctx: Ctx, thread: Thread) -> None:
    """Looking frees the thread: an expired holder is moved to `expired` (which releases it), a vanished one's
    claim is dropped. `thread` was loaded locked (the lock order of `store.runs`: thread, then run)."""
    if thread.active_run_id is None:
        return
    holder = store.get_by_id(ctx.session, thread.active_run_id)
    if holder is None:
        store.release_thread(ctx.session, thread.id, thread.active_run_id)
    else:
        executor.expire_if_due(ctx, holder)
