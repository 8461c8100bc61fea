"""What a database error means for the unit of work that met it: a conflict to run again, an overload to answer
with a 503, SQLite busy (leave the event loop's lane)."""

from __future__ import annotations

import logging

from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

_CONFLICTS = frozenset({"40P01", "40001"})
"""PostgreSQL's deadlock_detected and serialization_failure: the transaction was chosen to give way, and the
same work succeeds when run again."""
_REFUSED = frozenset({"53300", "57P03"})
"""PostgreSQL's too_many_connections and cannot_connect_now: the database refused a new connection."""
_CONNECT_FAILED = "connection failed:"
"""How psycopg's error for a connection that could not be opened begins (it carries no SQLSTATE)."""


def is_conflict(error: BaseException) -> bool:
    """A deadlock or serialization failure (PostgreSQL): the transaction was rolled back to let another one
    through; running it again is the documented remedy."""
    return isinstance(error, OperationalError) and getattr(error.orig, "sqlstate", None) in _CONFLICTS


def is_overloaded(error: BaseException) -> bool:
    """No connection to be had: every one of the pool's was in use for `db.POOL_TIMEOUT_SECONDS`, or the database
    refused a new one. The request may be tried again later (a 503), nothing of it was done."""
    if isinstance(error, PoolTimeout):
        return True
    if not isinstance(error, OperationalError):
        return False
    return getattr(error.orig, "sqlstate", None) in _REFUSED or str(error.orig).startswith(_CONNECT_FAILED)


def log_background_failure(logger: logging.Logger, what: str, error: BaseException) -> None:
    """A background task's unit of work failed (a runner's round, a retention sweep): one line when the database
    had no connection to give (the next try may find one, as a request would get a 503), the traceback otherwise."""
    if is_overloaded(error):
        logger.warning("%s: no database connection to be had (%s); trying again later", what, error)
    else:
        logger.error("%s", what, exc_info=error)


def is_busy(error: Exception) -> bool:
    """SQLite's "database is locked" / "busy", raised by sqlite3 itself (a statement run on the DB-API
    connection: `BEGIN`, `store.statements`) or wrapped by SQLAlchemy."""
    message = str(getattr(error, "orig", error))
    return "locked" in message or "busy" in message
