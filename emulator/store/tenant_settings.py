"""Each tenant's control settings: its rate limits and its latency profile (no row: neither)."""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Insert, bindparam, delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from emulator.store import statements
from emulator.store.records import Table
from emulator.store.rows import TenantSettings
from emulator.tables import TenantSettingsRow

TENANT_SETTINGS = Table(TenantSettings)

_settings = TenantSettingsRow.__table__.c
_SETTING_NAMES = ("rate_limits", "latency")

_OF_TENANT = statements.prepared(
    statements.select_columns(TenantSettingsRow, TenantSettingsRow.tenant == bindparam("tenant"))
)
_DELETE_TENANT = statements.prepared(delete(TenantSettingsRow).where(_settings.tenant == bindparam("tenant")))

_READ = "emulator.tenant_settings"
"""`Session.info` key: the settings (or None) already read in this unit of work, by tenant (a model call asks
twice: its rate limits, its latency)."""


def load(session: Session, tenant: str) -> TenantSettings | None:
    read: dict[str, TenantSettings | None] = session.info.setdefault(_READ, {})
    if tenant not in read:
        read[tenant] = TENANT_SETTINGS.load(session, _OF_TENANT, {"tenant": tenant})
    return read[tenant]


@functools.cache
def _upsert(on_sqlite: bool, name: str) -> Insert:
    """Set one setting, creating the tenant's row if it has none (the other setting then stays unset)."""
    insert = sqlite.insert if on_sqlite else postgresql.insert
    values: dict[str, Any] = dict.fromkeys(_SETTING_NAMES)
    values |= {"tenant": bindparam("tenant"), name: bindparam("value", type_=_settings[name].type)}
    statement = insert(TenantSettingsRow).values(values)
    return statements.prepared(
        statement.on_conflict_do_update(index_elements=[_settings.tenant], set_={name: statement.excluded[name]})
    )


def save(session: Session, tenant: str, name: str, value: dict[str, Any] | None) -> None:
    """Set the tenant's `rate_limits` or `latency` (None: unset) in one atomic statement, safe against a
    concurrent first save on another replica."""
    if name not in _SETTING_NAMES:
        raise ValueError(f"{name!r} is not a tenant setting")
    statements.execute(session, _upsert(statements.on_sqlite(session), name), {"tenant": tenant, "value": value})
    session.info.get(_READ, {}).pop(tenant, None)
    TENANT_SETTINGS.synchronize(session, tenant, **{name: value})


def delete_tenant(session: Session, tenant: str) -> None:
    session.info.get(_READ, {}).pop(tenant, None)
    statements.execute(session, _DELETE_TENANT, {"tenant": tenant})
