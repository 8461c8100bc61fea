"""Request dependencies: who is calling (tenant), the beta header, and the request's unit of work."""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, Literal, TypeVar

from fastapi import Depends, Query, Request, params
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session
from starlette.responses import Response

from emulator import auth, lanes, limits
from emulator.context import NO_SESSION, Ctx
from emulator.errors import InvalidRequest
from emulator.json_input import check_json_body, is_json_content_type
from emulator.server_state import Runtime
from emulator.store.pagination import PageRequest

_BETA_MISSING = (
    "You must provide the 'OpenAI-Beta' header to access the Assistants API. Please try again by setting the "
    "header 'OpenAI-Beta: assistants=v2'."
)
_BETA_V1 = (
    "The v1 Assistants API has been deprecated. Please try again by setting the header 'OpenAI-Beta: assistants=v2'."
)


def runtime(request: Request) -> Runtime:
    held: Runtime = request.app.state.runtime
    return held


def _tenant(request: Request) -> str:
    """The caller's tenant, from its bearer key: 401 without one, or with one outside the allow-list."""
    return auth.tenant(request.scope, runtime(request).settings)


async def tenant(request: Request) -> str:
    return _tenant(request)


async def operator(request: Request) -> bool:
    """The caller holds the operator key (`EMULATOR_ADMIN_KEY`)."""
    return auth.is_operator(request.scope, runtime(request).settings)


Operator = Annotated[bool, Depends(operator)]


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


def _request_ctx(request: Request, *, write: bool) -> Ctx:
    rt = runtime(request)
    return Ctx(
        session=NO_SESSION, tenant=_tenant(request), settings=rt.settings, ids=rt.ids, model=rt.model, db=rt.db,
        write=write,
    )


async def write_ctx(request: Request) -> Ctx:
    return _request_ctx(request, write=True)


async def read_ctx(request: Request) -> Ctx:
    return _request_ctx(request, write=False)


async def server_read_ctx(request: Request) -> Ctx:
    """A read unit of work that needs no key (health): it has no tenant, so it reads only the server's own state."""
    rt = runtime(request)
    return Ctx(session=NO_SESSION, tenant="", settings=rt.settings, ids=rt.ids, model=rt.model, db=rt.db, write=False)


WriteCtx = Annotated[Ctx, Depends(write_ctx)]
"""A transaction that may write, opened by the route around the endpoint and committed when it returns,
before the response is sent."""
ReadCtx = Annotated[Ctx, Depends(read_ctx)]
ServerReadCtx = Annotated[Ctx, Depends(server_read_ctx)]
"""`ReadCtx` without a key: for the health endpoint."""


class CheckedBodyRoute(APIRoute):
    """A route whose JSON body is held to `check_json_body` when FastAPI serves it, as `api.fast_routes` does.

    The body is decoded here first (Starlette keeps it for FastAPI's own read); a body that does not decode is
    left to FastAPI, which refuses it as usual.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler
        strict = getattr(self, "strict_content_type", True)
        strict = bool(getattr(strict, "value", strict))

        async def checked(request: Request) -> Response:
            raw = await request.body()
            if raw and is_json_content_type(request.headers.get("content-type"), strict):
                try:
                    body = await request.json()
                except Exception:  # FastAPI reads it again and answers its own 400
                    body = None
                check_json_body(body, raw)
            return await handler(request)

        return checked


E = TypeVar("E", bound=Callable[..., Any])

_NEEDS_NO_UNIT_OF_WORK = "__emulator_needs_no_unit_of_work__"
_UNIT_OF_WORK_PROVIDERS = frozenset({write_ctx, read_ctx, server_read_ctx})


def without_unit_of_work(endpoint: E) -> E:
    """Declare that an endpoint of a `UnitOfWorkRoute` opens no transaction: it reads no table (the model list),
    or streams its body before its unit of work (a file upload). Put it under the route decorator."""
    setattr(endpoint, _NEEDS_NO_UNIT_OF_WORK, True)
    return endpoint


def _provides_unit_of_work(dependency: Any) -> bool:
    """`WriteCtx`, `ReadCtx`, or a dependency that takes one of them and returns its `Ctx` (a `Ctx` with more
    planned, e.g. the control plane's cache invalidation)."""
    if dependency in _UNIT_OF_WORK_PROVIDERS:
        return True
    return callable(dependency) and _unit_of_work_parameter(dependency) is not None


def _unit_of_work_parameter(function: Callable[..., Any]) -> str | None:
    """The name of the parameter through which `function` gets its unit of work, if it declares one."""
    names = []
    for name, hint in typing.get_type_hints(function, include_extras=True).items():
        for marker in getattr(hint, "__metadata__", ()):
            if isinstance(marker, params.Depends) and _provides_unit_of_work(marker.dependency):
                names.append(name)
    if len(names) > 1:
        raise TypeError(f"{function.__qualname__} declares more than one unit of work: {names}")
    return names[0] if names else None


class UnitOfWorkRoute(CheckedBodyRoute):
    """A route whose endpoint runs in one transaction, that of its unit-of-work parameter (`WriteCtx`,
    `ReadCtx`, or a dependency built on one), committed on success and rolled back on any error. An endpoint
    without one must say so (`without_unit_of_work`): declaring the route fails otherwise.

    On SQLite the transaction runs on the event loop when it can (`Database.run_inline`), otherwise, and always
    on PostgreSQL, in a worker thread (`Database.run_in_worker`, which runs it again after a conflict or a
    `RecordThenRetry`); either way nothing is left open if the client hangs up.
    """

    inline = True

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        unit = _unit_of_work_parameter(endpoint)
        needs_none = getattr(endpoint, _NEEDS_NO_UNIT_OF_WORK, False)
        where = f"{endpoint.__module__}.{endpoint.__qualname__}"
        if unit is None and not needs_none:
            raise TypeError(
                f"{where} declares no unit of work: take a WriteCtx or ReadCtx, or mark it @without_unit_of_work"
            )
        if unit is not None:
            if needs_none:
                raise TypeError(f"{where} is marked @without_unit_of_work but takes one ({unit!r})")
            if inspect.iscoroutinefunction(endpoint):
                raise TypeError(f"{where}: a unit of work runs a sync endpoint (in a transaction)")
            endpoint = _in_unit_of_work(endpoint, unit, inline=self.inline)
        super().__init__(path, endpoint, **kwargs)


class WorkerThreadRoute(UnitOfWorkRoute):
    """A unit-of-work route that always runs in a worker thread: its endpoints may block (parse a document)."""

    inline = False


def _in_unit_of_work(endpoint: Callable[..., Any], unit: str, *, inline: bool) -> Callable[..., Any]:
    @functools.wraps(endpoint)
    async def call(**kwargs: Any) -> Any:
        ctx = kwargs[unit]
        if not isinstance(ctx, Ctx) or ctx.db is None:
            raise TypeError(f"the unit of work of {endpoint.__qualname__} ({unit!r}) is not a request's Ctx")
        db = ctx.db

        def work(session: Session) -> Any:
            ctx.begin(session)
            return endpoint(**kwargs)

        try:
            result = await lanes.run(db, work, write=ctx.write, inline=inline, shield=True)
        except BaseException:
            ctx.rolled_back()
            raise
        ctx.committed()
        return result

    return call


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
