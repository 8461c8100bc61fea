"""The app factory: nothing stateful happens at import; the lifespan builds the database and runtime."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sys
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from emulator import __version__, clock, docs, logs, migrate, openapi, sandbox, tokens
from emulator.api import (
    assistants,
    control,
    files,
    messages,
    models,
    runs,
    threads,
    vector_store_file_batches,
    vector_store_files,
    vector_stores,
)
from emulator.api.fast_routes import DirectRoutes
from emulator.api.responses import OpenAIJSON, error_response, http_error_response
from emulator.commits import RunsChanged
from emulator.control import clocks as control_clocks
from emulator.control import scripts
from emulator.control.middleware import ControlMiddleware
from emulator.db import Database, is_sqlite_url
from emulator.db_errors import is_overloaded, log_background_failure
from emulator.errors import SERVER_ERROR_MESSAGE, APIError, ServerError, ServiceUnavailable
from emulator.ids import IdFactory
from emulator.request_edge import RequestEdge
from emulator.runs import runner, wakeups
from emulator.runs.hub import RunHub
from emulator.server_state import Runtime, model_for
from emulator.settings import Settings
from emulator.store.notifications import Listener, Peers, Sender
from emulator.validation import to_invalid_request

log = logging.getLogger("emulator")


ROUTERS = (  # matched in this order, each route in turn: the busiest first (runs before threads: POST /threads/runs)
    messages.router,
    runs.router,
    threads.router,
    assistants.router,
    files.router,
    models.router,
    control.router,
    vector_stores.router,
    vector_store_files.router,
    vector_store_file_batches.router,
)

STREAMED_BODIES = frozenset({("POST", "/v1/files")})
"""The routes that read their body as a stream, under a limit of their own (`max_file_bytes`)."""


class ResponseHeaders:
    """Adds `x-request-id`, `openai-processing-ms` and `openai-version` to every response (pure ASGI); no
    endpoint sets them itself, so they are appended without looking for earlier values."""

    def __init__(self, app: ASGIApp, ids: IdFactory) -> None:
        self.app = app
        self.ids = ids

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = self.ids.request_id()

        response_started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
                elapsed_ms = str(int((time.perf_counter() - started) * 1000)).encode()
                message["headers"] = [
                    *message.get("headers", ()),
                    (b"x-request-id", request_id.encode()),
                    (b"openai-processing-ms", elapsed_ms),
                    (b"openai-version", b"2020-10-01"),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            # Starlette would answer an unhandled error outside every middleware, without these headers.
            if response_started:
                raise
            await error_response(unexpected_error())(scope, receive, send_with_headers)


OVERLOADED_MESSAGE = "The server is overloaded or not ready yet."
"""The hosted API's words for a 503."""


def unexpected_error(error: BaseException | None = None) -> APIError:
    """What an error no route expected answers (logged here): a 503 when the database had no connection to give
    (the client may try again; the SDK does), a 500 otherwise. `error` defaults to the one being handled."""
    error = error if error is not None else sys.exc_info()[1]
    if error is not None and is_overloaded(error):
        log.warning("no database connection to be had: answered 503 (%s)", error)
        return ServiceUnavailable(OVERLOADED_MESSAGE)
    log.error("unhandled error", exc_info=error)
    return ServerError(SERVER_ERROR_MESSAGE)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def api_error(_request: Request, exc: APIError) -> OpenAIJSON:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> OpenAIJSON:
        return error_response(to_invalid_request(exc.errors(), exc.body))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> OpenAIJSON:
        return http_error_response(request.method, request.url.path, exc)

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> OpenAIJSON:
        return error_response(unexpected_error(exc))


async def _sweep_forever(runtime: Runtime) -> None:
    def sweep_once() -> None:
        box = sandbox.installed()
        with runtime.db.transaction() as session:
            control_clocks.sweep(session, runtime.settings.thread_retention_days)
            tenant_nows = {tenant: clock.now(session, tenant) for tenant in box.tenants()}
        for tenant, now in tenant_nows.items():  # sessions of threads no call comes back to, by their tenant's time
            box.end_idle(now, tenant)

    while True:
        await asyncio.sleep(runtime.settings.retention_sweep_seconds)
        try:
            await run_in_threadpool(sweep_once)
        except Exception as error:  # a failed sweep must not stop the server; the next one retries
            log_background_failure(log, "retention sweep failed", error)


def _load_script(db: Database, settings: Settings) -> None:
    assert settings.script is not None
    with db.transaction() as session:
        added = scripts.load_file(session, settings.script, clock.server_now(session))
    log.info("loaded %d scripted turns from %s", added, settings.script)


def _telling(hub: RunHub, sender: Sender | None) -> RunsChanged:
    """What a commit calls with the runs it changed: this process's waiters are woken, and on PostgreSQL the
    other processes are sent the news."""
    if sender is None:
        return hub.notify_many

    def told(run_ids: tuple[str, ...]) -> None:
        hub.notify_many(run_ids)
        sender.send(run_ids)

    return told


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        settings.files_dir.mkdir(parents=True, exist_ok=True)
        hub = RunHub(time_moved=wakeups.ring_now)
        hub.bind_running_loop()
        database_url = settings.resolved_database_url()
        peers = Peers()
        sender = None if is_sqlite_url(database_url) else Sender(database_url, peers)
        db = Database.connect(database_url, pool_size=settings.database_pool_size, runs_changed=_telling(hub, sender))
        migrate.upgrade(db.engine)
        if settings.script is not None:
            _load_script(db, settings)
        sandbox.install(settings.data_dir / "sandbox", unsafe=settings.unsafe_code_execution,
                        timeout_seconds=settings.code_interpreter_timeout_seconds)
        runtime = Runtime(settings=settings, db=db, ids=ids, model=model_for(settings), hub=hub)
        # Until an encoding is built, a run's units of work leave the event loop for a worker thread.
        threading.Thread(target=tokens.warm_up, name="tokenizer-warm-up", daemon=True).start()
        app.state.runtime = runtime
        sweeper = asyncio.create_task(_sweep_forever(runtime))
        run_runner = asyncio.create_task(runner.run(runtime))
        listener = None if sender is None else Listener(database_url, hub.notify, hub.notify_all, peers)
        if listener is not None:
            await listener.start()
        try:
            yield {}
        finally:
            if listener is not None:
                await listener.stop()
            if sender is not None:
                sender.close()
            for task in (run_runner, sweeper):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            sandbox.uninstall()
            await runtime.close()
            await db.close()

    ids = IdFactory(settings.seed)
    app = FastAPI(
        title="OpenAI Assistants API v2 emulator",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,  # emulator.docs serves them without a CDN
        redoc_url=None,
        openapi_url="/_emulator/openapi.json",
        generate_unique_id_function=openapi.operation_id,
    )
    app.openapi = functools.partial(openapi.describe, app)  # type: ignore[method-assign]
    for router in ROUTERS:
        app.include_router(router)
    docs.install(app)
    _install_error_handlers(app)
    if settings.direct_routes:
        app.add_middleware(DirectRoutes, fastapi_app=app)
    app.add_middleware(ControlMiddleware)
    app.add_middleware(RequestEdge, max_body_bytes=settings.max_json_body_bytes, streamed=STREAMED_BODIES)
    app.add_middleware(ResponseHeaders, ids=ids)
    logs.configure(settings.log_level)
    logs.install_access_log(app)
    return app
