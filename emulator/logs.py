"""What the server logs: one line per request (`emulator.access`) and each run state change (`emulator.runs`).

`--log-level` / `EMULATOR_LOG_LEVEL` sets the level of the `emulator` logger: `info` (the default) shows both,
`warning` only problems. Below `info` the access-log middleware is not installed at all (`install_access_log`).
The tenant is shown as the first 8 hex digits of its digest (`context.tenant_of`), never the key.
"""

from __future__ import annotations

import logging
import sys
import time

from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from emulator import auth

access = logging.getLogger("emulator.access")
runs = logging.getLogger("emulator.runs")

FAULT_KEY = "emulator.fault"
"""Scope key set by the control middleware when an injected fault fires: the rule id and its effect type."""

_HANDLER_NAME = "emulator-stderr"


def configure(level: str) -> None:
    """Send the `emulator` loggers to stderr at `level` (once per process; a second call only sets the level)."""
    root = logging.getLogger("emulator")
    root.setLevel(level.upper())
    if not any(handler.get_name() == _HANDLER_NAME for handler in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.set_name(_HANDLER_NAME)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
        root.addHandler(handler)
        root.propagate = False


def install_access_log(app: Starlette) -> None:
    """Add `AccessLog` as the outermost middleware when request lines are on; below `info` it costs nothing."""
    if access.isEnabledFor(logging.INFO):
        app.add_middleware(AccessLog)


def mark_fault(scope: Scope, rule_id: str, effect_type: str) -> None:
    scope[FAULT_KEY] = f"{rule_id} {effect_type}"


def tenant_label(scope: Scope) -> str:
    """The first 8 hex digits of the tenant's digest (as `emulator.auth` found it), or `-` when no key was
    accepted."""
    tenant: str | None = scope.get(auth.TENANT_SCOPE_KEY)
    return tenant[:8] if tenant else "-"


class AccessLog:
    """`tenant METHOD /path?query status ms [fault <rule> <effect>]` after each HTTP request (pure ASGI)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            _log_request(scope, status, (time.perf_counter() - started) * 1000)


def _log_request(scope: Scope, status: int, elapsed_ms: float) -> None:
    # The path as it came off the wire: `scope["path"]` is percent-decoded, so `%0A` there would forge a line.
    path = scope.get("raw_path", scope["path"].encode()).decode("latin-1")
    if scope.get("query_string"):
        path = f"{path}?{scope['query_string'].decode('latin-1')}"
    fault = scope.get(FAULT_KEY)
    if fault is None:
        access.info("%s %s %s %d %.1fms", tenant_label(scope), scope["method"], path, status, elapsed_ms)
    else:
        access.info(
            "%s %s %s %d %.1fms injected fault %s",
            tenant_label(scope), scope["method"], path, status, elapsed_ms, fault,
        )


def run_moved(run_id: str, thread_id: str, before: str, after: str) -> None:
    runs.info("run %s on thread %s: %s -> %s", run_id, thread_id, before, after)


def run_created(run_id: str, thread_id: str) -> None:
    runs.info("run %s on thread %s: created, queued", run_id, thread_id)
