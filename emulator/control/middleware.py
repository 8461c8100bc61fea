"""Applies each tenant's fault rules and management rate limits to `/v1` requests (pure ASGI middleware), once
the request's key is accepted (`emulator.auth`): a refused key counts no fault hit and no rate charge.

What the middleware writes (a rule's hits, the request's rate charges) is its own transaction, committed before
the route runs (`admit`), not part of the route's unit of work, because it must hold whatever the route does:
a fault may answer the request itself, a 429 is answered before the route runs, and a request the route then
refuses or fails still counted (the hosted API counts every request); the route's unit of work may also be a
read, which must not hold the rate window's lock. A request that matches no rule and falls under no limit
opens no transaction here.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import anyio
from sqlalchemy.orm import Session
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from emulator import auth, clock, lanes, logs
from emulator.api.responses import OpenAIJSON
from emulator.control import faults, ratelimits
from emulator.control.cache import TenantControl
from emulator.errors import APIError, RateLimited, Unauthorized
from emulator.operations import operation_of
from emulator.server_state import Runtime


@dataclass(frozen=True)
class Admission:
    """What the control plane decided for a request before its route runs."""

    fired: faults.Rule | None = None
    """The fault rule that fires on the request."""
    headers: dict[str, str] = field(default_factory=dict)
    """The `x-ratelimit-*` headers of its response."""
    refusal: RateLimited | None = None
    """The 429 of a management limit it would exceed (it was counted against none)."""


def admit(
    session: Session,
    tenant: str,
    matching: list[faults.Rule],
    config: dict[str, Any] | None,
    request: ratelimits.RequestKey,
) -> Admission:
    """Count the request's hit on its first live matching fault rule and, unless that rule answers with an
    error, charge it against the management limits, in the middleware's one transaction (see the module's
    docstring for why it is not the route's). A refusal is returned, not raised: the rule's hit still counts."""
    fired = faults.fire(session, matching) if matching else None
    if fired is not None and fired[1]["effect"]["type"] == "error":
        return Admission(fired=fired)
    now = clock.now(session, tenant)
    headers = ratelimits.token_headers(session, tenant, config, now)
    try:
        headers |= ratelimits.charge_management(session, tenant, config, request, now)
    except RateLimited as refusal:
        return Admission(fired=fired, refusal=refusal)
    return Admission(fired=fired, headers=headers)


async def _load_control(runtime: Runtime, tenant: str) -> TenantControl:
    """The tenant's control state afresh: a read transaction of its own, at most once a second per tenant and
    replica (`limits.CONTROL_CACHE_SECONDS`), before the route's unit of work exists."""
    return await lanes.run(runtime.db, functools.partial(runtime.control.load, tenant=tenant), write=False)


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
        except Unauthorized:  # the route answers the 401
            await self.app(scope, receive, send)
            return
        control = runtime.control.peek(tenant)
        if control is None:
            control = await _load_control(runtime, tenant)
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
        request = (method, path, operation_of(method, path))
        matching = [(rule_id, rule) for rule_id, rule in control.faults if faults.matches(rule, *request)]
        if not matching and not ratelimits.counts(control.rate_limits, request):
            await self.app(scope, receive, send)
            return
        work = functools.partial(admit, tenant=tenant, matching=matching, config=control.rate_limits, request=request)
        admission = await lanes.run(runtime.db, work, write=True, shield=True)
        cut_after: int | None = None
        if admission.fired is not None:
            rule_id, rule = admission.fired
            effect = rule["effect"]
            logs.mark_fault(scope, rule_id, effect["type"])
            if effect["type"] == "error":
                raise faults.error_for(effect)
            if effect["type"] == "latency":
                await anyio.sleep(effect["ms"] / 1000)
            else:
                cut_after = effect["after_events"]
        if admission.refusal is not None:
            raise admission.refusal
        await self.app(scope, receive, _wrap_send(send, admission.headers, cut_after))


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
