"""Alembic environment: the emulator's tables, on the connection handed over by `emulator.migrate`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from emulator.db import create_db_engine
from emulator.tables import Base

_PG_MIGRATION_LOCK = 7_114_532_011
"""Advisory lock key: replicas starting together on one PostgreSQL migrate one at a time."""


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_db_engine(context.config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit(
        "Offline (SQL script) migrations are not supported; run `assistants-emulator db upgrade`."
    )
run_migrations_online()
