"""Request dependencies: who is calling (tenant), the beta header, and the request's unit of work."""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, Literal

import anyio
from fastapi import Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute

from emulator import limits
from emulator.context import Ctx, tenant_of
from emulator.db import Database
from emulator.errors import InvalidRequest, Unauthorized
from emulator.services.runtime import Runtime
from emulator.store.pagination import PageRequest

_NO_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer "
    "auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're "
    "accessing the API from your browser and are prompted for a username. You can obtain an API key from "
    "https://platform.openai.com/account/api-keys."
)
_BETA_MISSING = (
    "You must provide the 'OpenAI-Beta' header to access the Assistants API. Please try again by setting the "
    "header 'OpenAI-Beta: assistants=v2'."
)
_BETA_V1 = (
    "The v1 Assistants API has been deprecated. Please try again by setting the header 'OpenAI-Beta: assistants=v2'."
)


def runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def _tenant(request: Request) -> str:
    """The caller's tenant, from its bearer key: 401 without one, or with one outside the allow-list."""
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise Unauthorized(_NO_KEY)
    allowed = runtime(request).settings.api_key_allow_list()
    if allowed is not None and key not in allowed:
        shown = f"{key[:3]}*{key[-4:]}" if len(key) > 8 else key
        raise Unauthorized(
            f"Incorrect API key provided: {shown}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            code="invalid_api_key",
        )
    return tenant_of(key)


async def tenant(request: Request) -> str:
    return _tenant(request)


async def require_assistants_beta(request: Request) -> None:
    """The beta header is checked after the key, as the real API does: no key is a 401 whatever the headers.

    Each dependency here reads the request itself rather than depending on another: every level of FastAPI's
    dependency solving costs more than parsing a header twice.
    """
    _tenant(request)
    values = [part.strip() for part in request.headers.get("openai-beta", "").split(",")]
    if "assistants=v2" in values:
        return
    if "assistants=v1" in values:
        raise InvalidRequest(_BETA_V1, param=None, code="invalid_beta")
    raise InvalidRequest(_BETA_MISSING, param=None, code="invalid_beta")


def _unit_of_work(*, write: bool) -> Callable[[Request], AsyncIterator[Ctx]]:
    async def unit_of_work(request: Request) -> AsyncIterator[Ctx]:
        """The request's transaction: opened without I/O, ended (commit on success) in one shielded thread hop,
        so that neither an error nor a client that hangs up can leave it open."""
        tenant_id = _tenant(request)
        rt = runtime(request)
        session = rt.db.session(write=write)
        ctx = Ctx(session=session, tenant=tenant_id, settings=rt.settings, ids=rt.ids, model=rt.model)
        try:
            yield ctx
        except BaseException:
            with anyio.CancelScope(shield=True):
                await run_in_threadpool(rt.db.finish, session, commit=False)
            raise
        if not session.in_transaction():  # ended by the endpoint (`UnitOfWorkRoute`), or never begun: no I/O
            session.close()
            return
        with anyio.CancelScope(shield=True):
            await run_in_threadpool(rt.db.finish, session, commit=True)

    return unit_of_work


class UnitOfWorkRoute(APIRoute):
    """A route whose sync endpoint commits its request's transaction in its own worker thread, on success.

    It saves the thread hop of the unit of work's commit (the unit of work then only closes the session); on an
    error the unit of work still rolls back, as for any route.
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if not inspect.iscoroutinefunction(endpoint):
            endpoint = _committing(endpoint)
        super().__init__(path, endpoint, **kwargs)


def _committing(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(endpoint)
    def call(*args: Any, **kwargs: Any) -> Any:
        result = endpoint(*args, **kwargs)
        for value in kwargs.values():
            if isinstance(value, Ctx):
                Database.finish(value.session, commit=True)
        return result

    return call


write_ctx = _unit_of_work(write=True)
read_ctx = _unit_of_work(write=False)

WriteCtx = Annotated[Ctx, Depends(write_ctx, scope="function")]
"""A transaction that may write; committed when the endpoint returns, before the response is sent."""
ReadCtx = Annotated[Ctx, Depends(read_ctx, scope="function")]

Order = Literal["asc", "desc"]


async def page_request(
    limit: Annotated[int, Query(ge=limits.LIST_LIMIT_MIN, le=limits.LIST_LIMIT_MAX)] = limits.LIST_LIMIT_DEFAULT,
    order: Order = "desc",
    after: str | None = None,
    before: str | None = None,
) -> PageRequest:
    return PageRequest(limit=limit, order=order, after=after, before=before)


Pagination = Annotated[PageRequest, Depends(page_request)]
BetaHeader = Depends(require_assistants_beta)
