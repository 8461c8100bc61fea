"""The API's routes served fast: matched by path segments, their parameters bound by a plan made once.

FastAPI declares the routes (and documents them); per request it matches every route of every included router
(twice, in this version), walks its middleware layers, then solves each endpoint's dependency tree
generically: together about half of a simple request's CPU. `DirectRoutes` sits inside our middlewares and,
for each route whose parameters it can bind itself (path and query parameters, one JSON body, the `Request`,
and dependencies made of these), calls the endpoint with the values FastAPI would have given it: the same
fields validate them (FastAPI's own `ModelField`s), errors are collected in the same order and translated by
the same function, and a JSON body that does not parse is refused before any dependency runs, as FastAPI
does. Every other request (unknown path, wrong method, a route it cannot bind, dependency overrides set)
goes on to FastAPI unchanged.
"""

from __future__ import annotations

import collections.abc
import copy
import inspect
import json
import typing
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from types import UnionType
from typing import Any, Union

from fastapi import FastAPI, params
from fastapi.concurrency import run_in_threadpool
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.convertors import StringConvertor
from starlette.datastructures import QueryParams
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from emulator.api.responses import BODY_NOT_PARSED, error_response, http_error_response
from emulator.errors import APIError
from emulator.json_input import check_json_body, is_json_content_type
from emulator.validation import to_invalid_request

_UNDEFINED: Any = object()
"""No value was sent (FastAPI then takes the field's default, or reports it missing)."""

Values = dict[str, Any]
Errors = list[dict[str, Any]]


class _Unsupported(Exception):
    """The route uses a parameter kind that only FastAPI binds."""


class _Call:
    """What one request needs to bind a dependant's parameters."""

    __slots__ = ("body", "cache", "path_params", "query", "request")

    def __init__(self, request: Request, path_params: dict[str, str], body: Any) -> None:
        self.request = request
        self.query: QueryParams = request.query_params
        self.path_params = path_params
        self.body = body
        self.cache: dict[Callable[..., Any], Any] = {}


Binder = Callable[[_Call, Values, Errors], Awaitable[None]]


def _validate(field: Any, value: Any, loc: tuple[str, ...], values: Values, errors: Errors) -> None:
    """FastAPI's `_validate_value_with_model_field`: a missing value takes the default or is an error."""
    if value is _UNDEFINED:
        if field.field_info.is_required():
            errors.append({"type": "missing", "loc": loc, "msg": "Field required", "input": None})
            return
        value = copy.deepcopy(field.default)
        if not field.field_info.validate_default:
            values[field.name] = value
            return
    validated, field_errors = field.validate(value, values, loc=loc)
    if field_errors:
        errors.extend(field_errors)
    else:
        values[field.name] = validated


def _query_binder(field: Any) -> Binder:
    alias = field.alias
    many = _is_list(field.field_info.annotation)
    loc = ("query", alias)

    async def bind(call: _Call, values: Values, errors: Errors) -> None:
        if many:
            value: Any = call.query.getlist(alias) or _UNDEFINED
        else:
            value = call.query.get(alias, _UNDEFINED)
        _validate(field, value, loc, values, errors)

    return bind


def _is_list(annotation: Any) -> bool:
    """`list[X]` or `list[X] | None`: a repeated query parameter. Other collections FastAPI also reads as
    repeated parameters, so a route using them is left to it."""
    options = typing.get_args(annotation) if typing.get_origin(annotation) in (Union, UnionType) else (annotation,)
    origins = {typing.get_origin(option) or option for option in options} - {type(None)}
    if origins & {set, frozenset, tuple, collections.abc.Sequence, collections.abc.Set}:
        raise _Unsupported("a collection other than list in the query")
    return list in origins


def _path_binder(field: Any) -> Binder:
    loc = ("path", field.alias)

    async def bind(call: _Call, values: Values, errors: Errors) -> None:
        _validate(field, call.path_params.get(field.alias, _UNDEFINED), loc, values, errors)

    return bind


def _body_binder(field: Any) -> Binder:
    if isinstance(field.field_info, params.Form) or getattr(field.field_info, "embed", False):
        raise _Unsupported("form and embedded bodies")

    async def bind(call: _Call, values: Values, errors: Errors) -> None:
        _validate(field, call.body, ("body",), values, errors)

    return bind


def _dependency_binder(dependant: Dependant) -> Binder:
    """A dependency: its own parameters first; called only if they all validated; once per request."""
    call_ = dependant.call
    if call_ is None or not inspect.iscoroutinefunction(call_):
        raise _Unsupported(f"dependency {call_!r} is not a plain coroutine function")
    own = _binders(dependant, body_allowed=False)
    name = dependant.name
    use_cache = dependant.use_cache

    async def bind(call: _Call, values: Values, errors: Errors) -> None:
        if use_cache and call_ in call.cache:
            solved = call.cache[call_]
        else:
            arguments: Values = {}
            own_errors: Errors = []
            for binder in own:
                await binder(call, arguments, own_errors)
            if own_errors:
                errors.extend(own_errors)
                return
            solved = await call_(**arguments)
            call.cache.setdefault(call_, solved)
        if name is not None:
            values[name] = solved

    return bind


def _binders(dependant: Dependant, *, body_allowed: bool) -> list[Binder]:
    """In FastAPI's order: sub-dependencies, then path, query and body parameters, then the request."""
    unsupported = (
        dependant.header_params, dependant.cookie_params, dependant.websocket_param_name,
        dependant.http_connection_param_name, dependant.response_param_name, dependant.background_tasks_param_name,
        dependant.security_scopes_param_name,
    )
    if getattr(dependant, "concurrency", None) is not None:
        raise _Unsupported("a dependency with a concurrency limit")
    if any(unsupported) or (dependant.body_params and not body_allowed) or len(dependant.body_params) > 1:
        raise _Unsupported("a parameter kind bound only by FastAPI")
    binders = [_dependency_binder(sub) for sub in dependant.dependencies]
    binders += [_path_binder(field) for field in dependant.path_params]
    binders += [_query_binder(field) for field in dependant.query_params]
    binders += [_body_binder(field) for field in dependant.body_params]
    if dependant.request_param_name:
        request_name = dependant.request_param_name

        async def bind_request(call: _Call, values: Values, errors: Errors) -> None:
            values[request_name] = call.request

        binders.append(bind_request)
    return binders


class _Endpoint:
    """One route's endpoint and the plan that binds its arguments."""

    def __init__(self, route: APIRoute) -> None:
        self.endpoint = route.dependant.call
        if self.endpoint is None:
            raise _Unsupported("no endpoint")
        if route.response_model is not None:
            raise _Unsupported("an endpoint whose return value FastAPI serializes")
        self.is_async = inspect.iscoroutinefunction(self.endpoint)
        self.binders = _binders(route.dependant, body_allowed=True)
        self.has_body = bool(route.dependant.body_params)
        strict = getattr(route, "strict_content_type", True)
        self.strict = bool(getattr(strict, "value", strict))

    async def __call__(self, scope: Scope, receive: Receive, send: Send, path_params: dict[str, str]) -> None:
        request = Request(scope, receive)
        try:
            response = await self._respond(request, path_params)
        except APIError as error:
            response = error_response(error)
        except HTTPException as exc:
            response = http_error_response(request.method, request.url.path, exc)
        await response(scope, receive, send)

    async def _body(self, request: Request) -> Any:
        """The body as FastAPI reads it: JSON when the content type says so, else the bytes; any failure to read
        or parse it, or a JSON body that breaks `check_json_body`, is a 400 before a dependency runs."""
        try:
            raw = await request.body()
            if not raw:
                return _UNDEFINED
            if not is_json_content_type(request.headers.get("content-type"), self.strict):
                return raw
            body = json.loads(raw)
        except json.JSONDecodeError as exc:
            error = {"type": "json_invalid", "loc": ("body", exc.pos), "msg": "JSON decode error"}
            raise to_invalid_request([error], exc.doc) from exc  # type: ignore[list-item]
        except HTTPException:
            raise
        except Exception as exc:
            raise HTTPException(status_code=400, detail=BODY_NOT_PARSED) from exc
        check_json_body(body, raw)
        return body

    async def _respond(self, request: Request, path_params: dict[str, str]) -> Response:
        body = await self._body(request) if self.has_body else _UNDEFINED
        call = _Call(request, path_params, body)
        values: Values = {}
        errors: Errors = []
        for binder in self.binders:
            await binder(call, values, errors)
        if errors:
            raise to_invalid_request(errors, None if body is _UNDEFINED else body)  # type: ignore[arg-type]
        assert self.endpoint is not None
        response: Response
        if self.is_async:
            response = await self.endpoint(**values)
        else:
            response = await run_in_threadpool(self.endpoint, **values)
        return response


@dataclass(frozen=True)
class _Entry:
    """A route of the app, as `DirectRoutes` matches it: literal segments and named parameters, in order."""

    position: int
    """Its place in FastAPI's matching order."""
    methods: frozenset[str] | None
    segments: tuple[str | None, ...]
    names: tuple[tuple[int, str], ...]
    endpoint: _Endpoint | None
    """None: FastAPI serves this route."""


def _flattened(routes: list[BaseRoute]) -> Iterator[BaseRoute]:
    """The app's routes in FastAPI's matching order. Recent FastAPI keeps each included router as one entry;
    one included without a prefix, dependencies or a body limit of its own is the same as its routes."""
    for route in routes:
        original = getattr(route, "original_router", None)
        context = getattr(route, "include_context", None)
        plain = context is not None and not (context.prefix or context.dependencies or context.max_body_size)
        if original is not None and plain:
            yield from _flattened(original.routes)
        else:
            yield route


class DirectRoutes:
    """Pure ASGI: serves the requests of the routes it could plan, hands every other one to FastAPI."""

    def __init__(self, app: ASGIApp, fastapi_app: FastAPI) -> None:
        self.app = app
        self.fastapi_app = fastapi_app
        self.table: dict[int, list[_Entry]] = {}
        self.catch_all: list[tuple[int, Any]] = []
        """Routes matched by a regex only (a `{name:path}` parameter, a parameter inside a segment) or not at all
        (a mount): (position, regex or None)."""
        for position, route in enumerate(_flattened(fastapi_app.routes)):
            self._add(position, route)

    def _add(self, position: int, route: BaseRoute) -> None:
        if not isinstance(route, Route) or getattr(route, "max_body_size", None) is not None:
            self.catch_all.append((position, None))
            return
        parts = route.path.split("/")
        whole = all("{" not in part or (part.startswith("{") and part.endswith("}")) for part in parts)
        if not whole or any(not isinstance(c, StringConvertor) for c in route.param_convertors.values()):
            self.catch_all.append((position, route.path_regex))
            return
        segments: list[str | None] = []
        names: list[tuple[int, str]] = []
        for index, part in enumerate(parts):
            if part.startswith("{"):
                names.append((index, part[1:-1].split(":")[0]))
                segments.append(None)
            else:
                segments.append(part)
        endpoint = None
        if isinstance(route, APIRoute):
            try:
                endpoint = _Endpoint(route)
            except _Unsupported:
                endpoint = None
        methods = frozenset(route.methods) if route.methods else None
        entry = _Entry(position, methods, tuple(segments), tuple(names), endpoint)
        self.table.setdefault(len(segments), []).append(entry)

    def match(self, method: str, path: str) -> tuple[_Entry, dict[str, str]] | None:
        parts = path.split("/")
        for entry in self.table.get(len(parts), ()):
            if entry.methods is not None and method not in entry.methods:
                continue
            if all(literal is None or literal == part for literal, part in zip(entry.segments, parts, strict=True)):
                params = {name: parts[index] for index, name in entry.names}
                if all(params.values()):
                    return entry, params
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("root_path") or self.fastapi_app.dependency_overrides:
            await self.app(scope, receive, send)
            return
        found = self.match(scope["method"], scope["path"])
        if found is None or found[0].endpoint is None or self._shadowed(found[0], scope["path"]):
            await self.app(scope, receive, send)
            return
        entry, params = found
        scope["path_params"] = params
        assert entry.endpoint is not None
        await entry.endpoint(scope, receive, send, params)

    def _shadowed(self, entry: _Entry, path: str) -> bool:
        """A route FastAPI would try first that only a regex can match (or a mount) takes the request."""
        return any(
            earlier < entry.position and (regex is None or regex.match(path)) for earlier, regex in self.catch_all
        )

