"""Before the server starts on PostgreSQL: create the named database when it does not exist and the user may.

When it cannot be reached or created, `StartupError` carries one line for the user (what failed and the fix),
printed by the command line instead of SQLAlchemy's traceback.
"""

from __future__ import annotations

import psycopg
from psycopg import errors, sql
from sqlalchemy.engine import URL, make_url

from emulator.db import normalize_url


class StartupError(Exception):
    """The server cannot start; the message is one line that says why and what to do."""


def _conninfo(url: URL, database: str) -> dict[str, object]:
    params: dict[str, object] = {
        "host": url.host or "localhost",
        "port": url.port or 5432,
        "dbname": database,
        "connect_timeout": 10,
    }
    if url.username:
        params["user"] = url.username
    if url.password:
        params["password"] = url.password
    return {**params, **url.query}


def _where(url: URL) -> str:
    return f"{url.host or 'localhost'}:{url.port or 5432}"


def ensure_database(database_url: str) -> bool:
    """Create the database of a PostgreSQL URL if it is missing; True when this call created it. Other
    backends are left alone. Raises StartupError when the server cannot be reached or the database made."""
    url = make_url(normalize_url(database_url))
    if url.get_backend_name() != "postgresql" or not url.database:
        return False
    try:
        psycopg.connect(**_conninfo(url, url.database)).close()  # type: ignore[arg-type]
        return False
    except psycopg.OperationalError as error:
        failure = error  # the server names a missing database in its own language: ask it instead
    if _exists_on_server(url, failure):
        raise StartupError(f"cannot connect to PostgreSQL at {_where(url)}: {_first_line(failure)}")
    _create(url)
    return True


def _exists_on_server(url: URL, failure: psycopg.OperationalError) -> bool:
    """Whether the database exists, asked through the `postgres` maintenance database."""
    try:
        with psycopg.connect(**_conninfo(url, "postgres")) as admin:  # type: ignore[arg-type]
            found = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (url.database,)).fetchone()
    except psycopg.Error:
        raise StartupError(f"cannot connect to PostgreSQL at {_where(url)}: {_first_line(failure)}") from None
    return found is not None


def _create(url: URL) -> None:
    name = url.database or ""
    user = url.username or "the current user"
    fix = (
        f'create it (e.g. `createdb -h {url.host or "localhost"} -p {url.port or 5432} -U postgres {name}`) '
        f"or let {user} create databases (`ALTER ROLE {user} CREATEDB`)"
    )
    try:
        with psycopg.connect(**_conninfo(url, "postgres"), autocommit=True) as admin:  # type: ignore[arg-type]
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except errors.DuplicateDatabase:
        return  # made by another replica starting at the same moment
    except errors.InsufficientPrivilege:
        raise StartupError(
            f'database "{name}" does not exist on {_where(url)} and {user} may not create it: {fix}.'
        ) from None
    except psycopg.Error as error:
        raise StartupError(
            f'database "{name}" does not exist on {_where(url)} and could not be created ({_first_line(error)}): '
            f"{fix}."
        ) from None


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
