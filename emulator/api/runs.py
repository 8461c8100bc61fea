"""Runs and run steps: `/v1/threads/{thread_id}/runs…` and `/v1/threads/runs` (create thread and run)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from sse_starlette import EventSourceResponse
from starlette.types import Message, Send

from emulator.api.deps import BetaHeader, Pagination, UnitOfWorkRoute, WriteCtx, runtime
from emulator.api.responses import OpenAIJSON, ok
from emulator.context import Ctx
from emulator.runs import streaming
from emulator.runs.events import Event
from emulator.schemas.common import render_list
from emulator.schemas.runs import (
    CreateRun,
    CreateThreadAndRun,
    ModifyRun,
    SubmitToolOutputs,
    render_run,
    render_step,
)
from emulator.services import runs as service
from emulator.services import thread_runs
from emulator.store.rows import Run

router = APIRouter(prefix="/v1/threads", dependencies=[BetaHeader], route_class=UnitOfWorkRoute)

Include = Annotated[list[str] | None, Query(alias="include[]")]


def _run_response(request: Request, run: Run) -> OpenAIJSON:
    return ok(render_run(run), headers={"openai-poll-after-ms": str(runtime(request).settings.poll_after_ms)})


class RunEvents(EventSourceResponse):
    """sse-starlette's response, without a cancel scope around every send when no send timeout is set (the
    emulator sets none): `move_on_after(None)` built, entered and left once per event was about a tenth of a
    streamed delta's instructions. With a timeout, or an sse-starlette without `_send_interrupted`, its own."""

    async def _send_with_timeout(self, send: Send, message: Message) -> None:
        if self.send_timeout is not None or not hasattr(self, "_send_interrupted"):
            await super()._send_with_timeout(send, message)
            return
        try:
            await send(message)
        except BaseException:
            self._send_interrupted = True
            raise


def _stream(
    request: Request, ctx: Ctx, run: Run, opening: list[Event], include: frozenset[str] = frozenset()
) -> EventSourceResponse:
    return RunEvents(
        streaming.drive(runtime(request), ctx.tenant, run.id, run.thread_id, opening, include),
        ping=15,
        sep="\n",
        headers={"openai-poll-after-ms": str(runtime(request).settings.poll_after_ms)},
    )


@router.post("/runs", response_model=None)
def create_thread_and_run(
    request: Request, body: CreateThreadAndRun, ctx: WriteCtx
) -> OpenAIJSON | EventSourceResponse:
    run, opening = service.create_thread_and_run(ctx, body, stream=bool(body.stream))
    return _stream(request, ctx, run, opening) if body.stream else _run_response(request, run)


@router.post("/{thread_id}/runs", response_model=None)
def create_run(
    request: Request, thread_id: str, body: CreateRun, ctx: WriteCtx, include: Include = None
) -> OpenAIJSON | EventSourceResponse:
    included = service.parse_include(include)
    run, opening = service.create(ctx, thread_id, body, stream=bool(body.stream))
    return _stream(request, ctx, run, opening, included) if body.stream else _run_response(request, run)


@router.get("/{thread_id}/runs")
def list_runs(thread_id: str, ctx: WriteCtx, page: Pagination) -> OpenAIJSON:
    return ok(render_list(thread_runs.list_page(ctx, thread_id, page), render_run))


@router.get("/{thread_id}/runs/{run_id}")
def retrieve_run(request: Request, thread_id: str, run_id: str, ctx: WriteCtx) -> OpenAIJSON:
    return _run_response(request, service.observed(ctx, thread_id, run_id))


@router.post("/{thread_id}/runs/{run_id}")
def modify_run(request: Request, thread_id: str, run_id: str, body: ModifyRun, ctx: WriteCtx) -> OpenAIJSON:
    return _run_response(request, thread_runs.update(ctx, thread_id, run_id, body))


@router.post("/{thread_id}/runs/{run_id}/cancel")
def cancel_run(request: Request, thread_id: str, run_id: str, ctx: WriteCtx) -> OpenAIJSON:
    return _run_response(request, service.cancel(ctx, thread_id, run_id))


@router.post("/{thread_id}/runs/{run_id}/submit_tool_outputs", response_model=None)
def submit_tool_outputs(
    request: Request, thread_id: str, run_id: str, body: SubmitToolOutputs, ctx: WriteCtx
) -> OpenAIJSON | EventSourceResponse:
    run, opening = service.submit_tool_outputs(ctx, thread_id, run_id, body, stream=bool(body.stream))
    return _stream(request, ctx, run, opening) if body.stream else _run_response(request, run)


@router.get("/{thread_id}/runs/{run_id}/steps")
def list_run_steps(thread_id: str, run_id: str, ctx: WriteCtx, page: Pagination, include: Include = None) -> OpenAIJSON:
    included = service.parse_include(include)
    steps = thread_runs.list_steps(ctx, thread_id, run_id, page)
    return ok(render_list(steps, lambda step: render_step(step, included)))


@router.get("/{thread_id}/runs/{run_id}/steps/{step_id}")
def retrieve_run_step(thread_id: str, run_id: str, step_id: str, ctx: WriteCtx, include: Include = None) -> OpenAIJSON:
    included = service.parse_include(include)
    return ok(render_step(thread_runs.get_step(ctx, thread_id, run_id, step_id), included))
