"""Removes everything a tenant has (`POST /_emulator/reset`): its threads and all under them, assistants,
vector stores, files and control state."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session

from emulator.store import (
    fault_rules,
    rate_counters,
    retention,
    scripted_turns,
    statements,
    tenant_settings,
    vector_stores,
)
from emulator.store.rows import Assistant, File, Thread

_threads = Thread.mapped.__table__.c
_assistants = Assistant.mapped.__table__.c
_files = File.mapped.__table__.c

_THREADS = statements.prepared(select(_threads.id).where(_threads.tenant == bindparam("tenant")))
_ASSISTANTS_DELETE = statements.prepared(
    delete(Assistant.mapped.__table__).where(_assistants.tenant == bindparam("tenant"))
)
_FILE_PATHS = statements.prepared(select(_files.storage_path).where(_files.tenant == bindparam("tenant")))
_FILES_DELETE = statements.prepared(delete(File.mapped.__table__).where(_files.tenant == bindparam("tenant")))


def delete_tenant(session: Session, tenant: str) -> list[Path]:
    """Delete every row of the tenant; returns the paths of its files' contents, to remove once committed."""
    params = {"tenant": tenant}
    paths = [Path(row.storage_path) for row in statements.all_rows(session, _FILE_PATHS, params)]
    retention.delete_found(session, _THREADS, params)
    statements.execute(session, _ASSISTANTS_DELETE, params)
    vector_stores.remove_tenant(session, tenant)
    statements.execute(session, _FILES_DELETE, params)
    scripted_turns.delete_tenant(session, tenant)
    fault_rules.delete_tenant(session, tenant)
    tenant_settings.delete_tenant(session, tenant)
    rate_counters.delete_tenant(session, tenant)
    return paths
