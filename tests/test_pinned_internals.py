"""The library internals our fast paths are built on, checked one by one, so that an upgrade past the pins in
pyproject.toml fails here with the name of what changed rather than as a wrong answer somewhere else.

- `store/statements.py` compiles statements once with SQLAlchemy's compiler and runs them on the sqlite3
  connection: it reads the compiled form's `string`, `positiontup`, `binds`, `literal_execute_params`,
  `post_compile_params`, each bind's `required`/`effective_value`/type processors, and the result types'
  `result_processor`; `db.py` takes the DB-API connection from `Connection.connection.dbapi_connection`;
  `store/records.py` reads `inspect(Mapped).column_attrs` and listens to the session's `do_orm_execute`.
- `api/fast_routes.py` plans each route's arguments from FastAPI's `Dependant` and `ModelField`s and flattens
  included routers (`original_router`, `include_context`); `api/deps.py` reads `params.Depends.dependency`.
- `api/runs.py`'s `RunEvents` overrides sse-starlette's `EventSourceResponse._send_with_timeout` (no cancel scope
  per send when `send_timeout` is None) and sets `_send_interrupted` as the library does when a send fails.
- `upstream/network.py` sets the network backend of httpx's transport's httpcore pool (`_pool._network_backend`)
  for plain-HTTP upstreams; where a version moves it, the client logs a warning and reads through anyio.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import tomllib
from importlib.metadata import version
from pathlib import Path
from typing import Annotated

import pytest
from fastapi import APIRouter, Depends, FastAPI, Request, params
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from packaging.requirements import Requirement
from pydantic import BaseModel
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    create_engine,
    inspect,
    select,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import BindParameter
from starlette.responses import Response

from emulator.api.fast_routes import DirectRoutes
from emulator.store import statements
from emulator.tables import MessageRow

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def _pinned(name: str) -> Requirement:
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    return next(Requirement(line) for line in dependencies if Requirement(line).name.lower() == name)


@pytest.mark.parametrize("name", ["sqlalchemy", "fastapi", "sse-starlette"])
def test_the_installed_version_is_the_pinned_one(name: str) -> None:
    requirement = _pinned(name)
    installed = version(name)
    assert requirement.specifier.contains(installed), (
        f"{name} {installed} is installed but pyproject.toml pins {requirement}: the fast paths were checked against "
        f"the pinned minor version only; run this file's tests on the new one before moving the pin"
    )


# SQLAlchemy: what store/statements.py compiles and runs on the sqlite3 connection

_METADATA = MetaData()
_ITEMS = Table(
    "items", _METADATA,
    Column("id", String, primary_key=True), Column("data", JSON), Column("flag", Boolean), Column("n", Integer),
)


@pytest.fixture
def sqlite_dialect() -> Dialect:
    return create_engine("sqlite://").dialect


def test_sqlalchemy_compiled_form_has_what_statements_reads(sqlite_dialect: Dialect) -> None:
    statement = select(_ITEMS.c.id, _ITEMS.c.data, _ITEMS.c.flag).where(
        _ITEMS.c.id == bindparam("id"), _ITEMS.c.n > bindparam("least", 0)
    )
    compiled = statement.compile(dialect=sqlite_dialect)
    for attribute in ("string", "positiontup", "binds", "literal_execute_params", "post_compile_params"):
        assert hasattr(compiled, attribute), f"SQLAlchemy's compiled statement has no `{attribute}` any more"
    assert compiled.positiontup == ["id", "least"], "positiontup no longer lists the bind names in SQL order"
    assert not compiled.literal_execute_params and not compiled.post_compile_params
    required, optional = compiled.binds["id"], compiled.binds["least"]
    assert isinstance(required, BindParameter) and isinstance(optional, BindParameter)
    assert required.required and not optional.required, "BindParameter.required changed meaning"
    assert optional.effective_value == 0, "BindParameter.effective_value no longer gives the default"
    processor = _ITEMS.c.flag.type.dialect_impl(sqlite_dialect).bind_processor(sqlite_dialect)
    assert processor is None or processor(True) in (1, True), "a type's bind_processor(dialect) changed"
    assert callable(_ITEMS.c.flag.type.dialect_impl(sqlite_dialect).result_processor(sqlite_dialect, None))
    assert isinstance(_ITEMS.c.data.type.dialect_impl(sqlite_dialect), JSON), "a JSON column's dialect type is no JSON"
    assert [column.key for column in statement.selected_columns] == ["id", "data", "flag"]


def test_sqlalchemy_expanding_parameters_are_refused_for_the_raw_path(sqlite_dialect: Dialect) -> None:
    """`IN (list)` compiles to a post-compile parameter, which the raw path cannot bind: it must be told."""
    statement = select(_ITEMS.c.id).where(_ITEMS.c.id.in_(bindparam("ids", expanding=True)))
    with pytest.raises(TypeError, match="post-compile"):
        statements.Compiled(statement, sqlite_dialect, None)


def test_statements_compiled_form_runs_on_the_sqlite3_connection(sqlite_dialect: Dialect) -> None:
    connection = sqlite3.connect(":memory:")
    connection.execute("CREATE TABLE items (id TEXT PRIMARY KEY, data TEXT, flag BOOLEAN, n INTEGER)")
    connection.execute("""INSERT INTO items VALUES ('a', '{"k": [1]}', 1, 5)""")
    statement = select(_ITEMS.c.id, _ITEMS.c.data, _ITEMS.c.flag).where(_ITEMS.c.id == bindparam("id"))
    compiled = statements.Compiled(statement, sqlite_dialect, None)
    rows = compiled.rows(connection.execute(compiled.sql, compiled.arguments({"id": "a"})).fetchall())
    assert [tuple(row) for row in rows] == [("a", {"k": [1]}, True)]
    assert rows[0]._fields == ("id", "data", "flag")


def test_sqlalchemy_gives_the_dbapi_connection_and_mapped_columns() -> None:
    engine = create_engine("sqlite://")
    with engine.connect() as connection:
        assert isinstance(connection.connection.dbapi_connection, sqlite3.Connection), (
            "Connection.connection.dbapi_connection (db.py's raw connection) is not the sqlite3 connection"
        )
    attributes = {attribute.key: attribute for attribute in inspect(MessageRow).column_attrs}
    assert "metadata_" in attributes and attributes["metadata_"].columns[0].name == "metadata"
    assert all(isinstance(attribute.deferred, bool) for attribute in attributes.values())
    assert "do_orm_execute" in dir(Session.dispatch), "Session's do_orm_execute event (records.py) is gone"


# FastAPI: what api/fast_routes.py plans routes from


class _Body(BaseModel):
    text: str


async def _dependency(request: Request, flag: bool = False) -> str:
    return f"{request.method} {flag}"


def _app() -> FastAPI:
    app = FastAPI()
    router = APIRouter(prefix="/items")

    @router.post("/{item_id}")
    def endpoint(item_id: str, body: _Body, named: Annotated[str, Depends(_dependency)], limit: int = 3) -> Response:
        return Response()

    app.include_router(router)
    return app


def test_fastapi_dependant_has_what_fast_routes_reads() -> None:
    fields = {field.name for field in dataclasses.fields(Dependant)}
    read = {
        "call", "name", "use_cache", "dependencies", "path_params", "query_params", "header_params", "cookie_params",
        "body_params", "request_param_name", "websocket_param_name", "http_connection_param_name",
        "response_param_name", "background_tasks_param_name", "security_scopes_param_name", "concurrency",
    }
    assert read <= fields, f"FastAPI's Dependant lost {sorted(read - fields)}: api/fast_routes.py binds from them"


def test_fastapi_routes_are_planned_and_their_fields_validate() -> None:
    app = _app()
    routes = [route for route in app.routes if isinstance(route, APIRoute) and route.path == "/items/{item_id}"]
    if not routes:
        included = [route for route in app.routes if getattr(route, "original_router", None) is not None]
        assert included and hasattr(included[0], "include_context"), (
            "FastAPI keeps included routers neither as their routes nor as `original_router` + `include_context`: "
            "api/fast_routes.py's _flattened must learn the new shape"
        )
        routes = [route for route in included[0].original_router.routes if isinstance(route, APIRoute)]
    route = routes[0]
    dependant = route.dependant
    assert [field.alias for field in dependant.path_params] == ["item_id"]
    assert [field.alias for field in dependant.query_params] == ["limit"]
    assert len(dependant.body_params) == 1 and dependant.dependencies[0].call is _dependency
    assert dependant.dependencies[0].request_param_name == "request"
    limit = dependant.query_params[0]
    assert not limit.field_info.is_required() and limit.default == 3
    assert hasattr(limit.field_info, "validate_default"), "FieldInfo.validate_default (fast_routes._validate) is gone"
    value, errors = limit.validate("7", {}, loc=("query", "limit"))
    assert (value, errors) == (7, []), "ModelField.validate(value, values, loc=) no longer returns (value, errors)"
    _value, errors = limit.validate("x", {}, loc=("query", "limit"))
    assert errors and errors[0]["loc"] == ("query", "limit"), "ModelField.validate's errors changed shape"

    direct = DirectRoutes(app.router, app)
    found = direct.match("POST", "/items/abc")
    assert found is not None and found[0].endpoint is not None, (
        "api/fast_routes.py no longer plans a route of path, query, body and dependency parameters"
    )
    assert found[1] == {"item_id": "abc"}


def test_fastapi_depends_names_its_dependency() -> None:
    marker = Depends(_dependency)
    assert isinstance(marker, params.Depends) and marker.dependency is _dependency, (
        "params.Depends.dependency (api/deps.py finds the unit of work by it) changed"
    )


def test_httpx_transport_pool_takes_the_upstream_network_backend() -> None:
    import httpx

    from emulator.upstream import network

    limits = httpx.Limits(max_connections=10)
    plain = network.upstream_transport(limits, "http://127.0.0.1:11434/v1")
    assert plain is not None
    assert isinstance(plain._pool._network_backend, network._Backend), "httpcore moved its pool's network backend"
    assert network.upstream_transport(limits, "https://api.example.com/v1") is None, "TLS stays httpx's own"


def test_sse_starlette_sends_through_the_method_run_events_overrides() -> None:
    import inspect

    from sse_starlette import EventSourceResponse

    from emulator.api.runs import RunEvents

    assert "send_timeout" in inspect.signature(EventSourceResponse).parameters, "sse-starlette's send_timeout moved"
    source = inspect.getsource(EventSourceResponse)
    assert "self._send_with_timeout(" in source, "sse-starlette no longer sends through _send_with_timeout"
    response = RunEvents(iter(()))
    assert response.send_timeout is None and response._send_interrupted is False, (
        "sse-starlette's send_timeout default or its _send_interrupted flag changed"
    )


def test_run_events_sends_as_given_and_marks_a_failed_send() -> None:
    asyncio.run(_run_events_sends_as_given_and_marks_a_failed_send())


async def _run_events_sends_as_given_and_marks_a_failed_send() -> None:
    from emulator.api.runs import RunEvents

    sent: list[dict[str, object]] = []

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    async def broken(message: dict[str, object]) -> None:
        raise OSError("the client went away")

    response = RunEvents(iter(()))
    await response._send_with_timeout(send, {"type": "http.response.body", "body": b"x", "more_body": True})
    assert sent == [{"type": "http.response.body", "body": b"x", "more_body": True}]
    assert response._send_interrupted is False
    with pytest.raises(OSError):
        await response._send_with_timeout(broken, {"type": "http.response.body", "body": b"y", "more_body": True})
    assert response._send_interrupted is True, "a failed send must mark the response as the library does"


def test_every_prepared_statement_compiles_for_the_raw_path(sqlite_dialect: Dialect) -> None:
    """A statement marked `statements.prepared` runs on SQLite's connection directly whenever a unit of work is on
    the event loop's lane: each must compile there (one whose column had no name failed only once the
    control plane's units of work moved onto the lane)."""
    import importlib
    import pkgutil

    import emulator.store

    for module in pkgutil.iter_modules(emulator.store.__path__):
        importlib.import_module(f"emulator.store.{module.name}")
    prepared = list(statements._PREPARED)
    assert len(prepared) >= 50, "the store's prepared statements were not found"
    for statement in prepared:
        compiled = statements.Compiled(statement, sqlite_dialect, None)
        assert all(compiled.fields) or compiled.row is None


def test_a_prepared_statement_with_an_unnamed_column_is_refused(sqlite_dialect: Dialect) -> None:
    from sqlalchemy import func

    with pytest.raises(TypeError, match="need names"):
        statements.Compiled(select(func.count(_ITEMS.c.id)), sqlite_dialect, None)
