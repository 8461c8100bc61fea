"""Applies each tenant's fault rules and management rate limits to `/v1` requests (pure ASGI middleware), once
the request's key is accepted (`emulator.auth`)."""

from __future__ import annotations

import anyio
from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from emulator import auth, clock, faults, logs, ratelimits
from emulator.api.responses import OpenAIJSON
from emulator.control_state import TenantControl
from emulator.errors import APIError, Unauthorized
from emulator.operations import operation_of
from emulator.server_state import Runtime
from emulator.store import control as store


def _fires(runtime: Runtime, rule_id: str, rule: dict) -> bool | None:  # type: ignore[type-arg]
    """Whether a matching rule fires on this request; None when it is spent (it fired `times` already) and so
    no longer matches: the next rule gets its chance. `hits` counts the matches of a live rule."""
    with runtime.db.transaction() as session:
        if store.spent(session, rule_id, rule.get("times")):
            return None
        number = store.count_hit(session, rule_id)
        if faults.draw(rule, number) >= rule.get("probability", 1.0):
            return False
        return store.count_fired(session, rule_id, rule.get("times"))


def _charge(
    runtime: Runtime, tenant: str, control: TenantControl, request: tuple[str, str, str | None]
) -> dict[str, str]:
    """Count the request against the management limits; the `x-ratelimit-*` headers for its response."""
    if not control.rate_limits:
        return {}
    with runtime.db.transaction() as session:
        now = clock.now(session, tenant)
        out = ratelimits.token_headers(session, tenant, control.rate_limits, now)
        return out | ratelimits.charge_management(session, tenant, control.rate_limits, request, now)


class ControlMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        runtime: Runtime = scope["app"].state.runtime
        try:
            tenant = auth.tenant(scope, runtime.settings)
        except Unauthorized:  # the route answers the 401: a refused key counts no fault hit and no rate charge
            await self.app(scope, receive, send)
            return
        control = runtime.control.peek(tenant) or await run_in_threadpool(runtime.control.load, runtime.db, tenant)
        if control.empty:
            await self.app(scope, receive, send)
            return
        try:
            await self._handle(scope, receive, send, runtime, tenant, control)
        except APIError as error:
            await OpenAIJSON(error.body(), status_code=error.status, headers=error.headers)(scope, receive, send)

    async def _handle(
        self, scope: Scope, receive: Receive, send: Send, runtime: Runtime, tenant: str, control: TenantControl
    ) -> None:
        method, path = scope["method"], scope["path"]
        operation = operation_of(method, path)
        cut_after: int | None = None
        for rule_id, rule in control.faults:
            if not faults.matches(rule, method, path, operation):
                continue
            fires = await run_in_threadpool(_fires, runtime, rule_id, rule)
            if fires is None:
                continue
            if fires:
                effect = rule["effect"]
                logs.mark_fault(scope, rule_id, effect["type"])
                if effect["type"] == "error":
                    raise faults.error_for(effect)
                if effect["type"] == "latency":
                    await anyio.sleep(effect["ms"] / 1000)
                else:
                    cut_after = effect["after_events"]
            break
        extra = await run_in_threadpool(_charge, runtime, tenant, control, (method, path, operation))
        await self.app(scope, receive, _wrap_send(send, extra, cut_after))


def _wrap_send(send: Send, extra_headers: dict[str, str], cut_after: int | None) -> Send:
    events_sent = 0
    closed = False

    async def wrapped(message: Message) -> None:
        nonlocal events_sent, closed
        if closed:
            return
        if message["type"] == "http.response.start" and extra_headers:
            headers = MutableHeaders(scope=message)
            for name, value in extra_headers.items():
                headers[name] = value
        is_event = message["type"] == "http.response.body" and message.get("body", b"").startswith(b"event: ")
        if cut_after is not None and is_event:
            if events_sent >= cut_after:
                closed = True
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            events_sent += 1
        await send(message)

    return wrapped
