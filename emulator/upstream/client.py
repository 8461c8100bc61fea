"""The upstream's streamed answer to one turn, over HTTP (`POST {url}/chat/completions`).

    async with client.stream(request) as turn:
        async for delta in turn:        # TextDelta, ToolCallDelta, Usage, Finish, as the upstream sends them
            ...
    finished = turn.finished()          # text, tool calls with parsed arguments, usage, finish reason

Leaving the `async with` early (a break, an exception, the task cancelled) closes the HTTP request at once, so
the upstream sees the connection closed and stops generating. Every failure is an `UpstreamError`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator
from types import TracebackType
from typing import Any

import httpx

from emulator.upstream.config import UpstreamConfig
from emulator.upstream.deltas import (
    Delta,
    FinishedTurn,
    MalformedChunk,
    ReportedError,
    TurnAssembler,
    parse_chunk,
    parse_completion,
)
from emulator.upstream.errors import ErrorCode, UpstreamError
from emulator.upstream.network import upstream_transport
from emulator.upstream.request import TurnRequest, chat_completions_body

ERROR_BODY_MAX_BYTES = 16_384
"""How much of an error answer is read for its message."""

_DONE = b"[DONE]"
_RATE_LIMIT_CODES = frozenset({"rate_limit_exceeded", "rate_limit_error", "429"})


class UpstreamClient:
    """One per process: a pool of connections to the upstream, shared by every run's turns."""

    def __init__(
        self,
        config: UpstreamConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int | None = None,
    ) -> None:
        self.config = config
        headers = {"User-Agent": "assistants-emulator"}
        if config.api_key:
            headers["Authorization"] = f"Bearer {config.api_key}"
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=64)
        self._http = httpx.AsyncClient(
            headers=headers,
            # The timeout bounds each wait (connect, each read), not the whole answer, which may stream for minutes.
            timeout=httpx.Timeout(config.timeout_seconds, pool=None),
            limits=limits,
            transport=transport or upstream_transport(limits, config.url),
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> UpstreamClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    def stream(self, request: TurnRequest) -> StreamedTurn:
        """The upstream's answer to `request`, with the model the config maps the run's model to."""
        return self.stream_body(chat_completions_body(request, self.config.upstream_model(request.model)))

    def stream_body(self, body: dict[str, Any]) -> StreamedTurn:
        return StreamedTurn(self._http, self.config, body)

    async def complete(self, request: TurnRequest) -> FinishedTurn:
        """The whole turn, deltas unseen."""
        async with self.stream(request) as turn:
            async for _delta in turn:
                pass
        return turn.finished()


def _event_data(event: bytes) -> bytes | None:
    """The data of one server-sent event (its `data:` lines joined by newlines); None for comments and events
    without data."""
    if event.startswith(b"data: ") and b"\n" not in event:
        return event[6:]
    data = [line[5:].removeprefix(b" ") for line in event.split(b"\n") if line.startswith(b"data:")]
    return b"\n".join(data) if data else None


def _error_message(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text[:500]
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    if isinstance(error, str):
        return error
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return str(data["message"])
    return text[:500]


class StreamedTurn:
    """One streamed answer: an async context manager (the HTTP exchange) and an async iterator of its deltas."""

    def __init__(self, http: httpx.AsyncClient, config: UpstreamConfig, body: dict[str, Any]) -> None:
        self._http = http
        self._config = config
        self._body = body
        self._response: httpx.Response | None = None
        self._deltas: AsyncGenerator[Delta, None] | None = None
        self._assembler = TurnAssembler()
        self._complete = False

    def _failure(self, exc: httpx.HTTPError) -> UpstreamError:
        """`exc` as the run's error; before the answer's headers (`_response` unset) or in its body."""
        where, seconds = self._config.display_url, f"{self._config.timeout_seconds:g} s"
        answering = self._response is not None
        detail = str(exc) or type(exc).__name__
        if isinstance(exc, httpx.ConnectTimeout):
            return UpstreamError(
                "server_error", f"could not connect to the upstream at {where} within {seconds}", kind="timeout"
            )
        if isinstance(exc, httpx.TimeoutException):
            if answering:
                message = f"the upstream at {where} sent nothing for {seconds} mid-stream"
            else:
                message = f"the upstream at {where} did not answer within {seconds}"
            return UpstreamError("server_error", message, kind="timeout")
        if isinstance(exc, httpx.ConnectError):
            return UpstreamError(
                "server_error", f"could not connect to the upstream at {where}: {detail}", kind="connect"
            )
        if answering:
            return UpstreamError(
                "server_error", f"the upstream at {where} broke off its answer mid-stream: {detail}", kind="stream_cut"
            )
        return UpstreamError(
            "server_error",
            f"the upstream at {where} closed the connection without answering: {detail}",
            kind="connect",
        )

    async def __aenter__(self) -> StreamedTurn:
        request = self._http.build_request("POST", self._config.completions_url, json=self._body)
        try:
            self._response = await self._http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise self._failure(exc) from exc
        if self._response.status_code != 200:
            await self._refuse(self._response)
        return self

    async def _refuse(self, response: httpx.Response) -> None:
        raw = b""
        try:
            async for part in response.aiter_bytes():
                raw += part
                if len(raw) >= ERROR_BODY_MAX_BYTES:
                    break
        except httpx.HTTPError:
            pass
        finally:
            await response.aclose()
        status = response.status_code
        detail = _error_message(raw) or "no message"
        where = self._config.display_url
        reason = f"{status} {response.reason_phrase}".strip()
        if status == 429:
            retry = response.headers.get("retry-after")
            wait = f" (retry after {retry} s)" if retry else ""
            raise UpstreamError(
                "rate_limit_exceeded",
                f"the upstream at {where} is rate limited: {reason}{wait}: {detail}",
                kind="status",
                status=status,
            )
        raise UpstreamError(
            "server_error", f"the upstream at {where} answered {reason}: {detail}", kind="status", status=status
        )

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._deltas is not None:
            await self._deltas.aclose()
        if self._response is not None:
            await self._response.aclose()

    def __aiter__(self) -> AsyncIterator[Delta]:
        if self._response is None:
            raise RuntimeError("iterate a StreamedTurn inside `async with`")
        if self._deltas is None:
            self._deltas = self._read(self._response)
        return self._deltas

    async def _read(self, response: httpx.Response) -> AsyncGenerator[Delta, None]:
        """The deltas of the answer, parsed from the bytes as they come (one layer over httpx: every generator
        between the socket and the run costs per delta, and a thousand streams make tens of thousands a second)."""
        whole = response.headers.get("content-type", "").startswith("application/json")
        try:
            if whole:
                for delta in self._parse(await response.aread(), whole=True):
                    self._assembler.add(delta)
                    yield delta
            else:
                buffer = b""
                async for raw in response.aiter_bytes():
                    buffer += raw
                    if b"\r" in buffer:  # CRLF line ends (JSON holds no raw CR); a CR at the end waits for its LF
                        buffer = buffer.replace(b"\r\n", b"\n")
                    *events, buffer = buffer.split(b"\n\n")
                    for event in events:
                        payload = _event_data(event)
                        if payload is None:
                            continue
                        if payload == _DONE:
                            self._complete = True
                            return
                        for delta in self._parse(payload):
                            self._assembler.add(delta)
                            yield delta
                payload = _event_data(buffer.strip(b"\n"))
                if payload == _DONE:
                    self._complete = True
                    return
                if payload is not None:
                    for delta in self._parse(payload):
                        self._assembler.add(delta)
                        yield delta
        except httpx.HTTPError as exc:
            raise self._failure(exc) from exc
        if self._assembler.finish_reason is None:
            raise UpstreamError(
                "server_error",
                f"the upstream at {self._config.display_url} ended its answer without finishing it "
                f"(no finish_reason, no [DONE])",
                kind="stream_cut",
            )
        self._complete = True

    def _parse(self, payload: bytes, *, whole: bool = False) -> list[Delta]:
        try:
            return parse_completion(payload) if whole else parse_chunk(payload)
        except MalformedChunk as exc:
            raise UpstreamError(
                "server_error",
                f"the upstream at {self._config.display_url} sent a malformed chunk: {exc}",
                kind="malformed",
            ) from exc
        except ReportedError as exc:
            code: ErrorCode = "rate_limit_exceeded" if exc.code in _RATE_LIMIT_CODES else "server_error"
            raise UpstreamError(
                code,
                f"the upstream at {self._config.display_url} reported an error: {exc.message}",
                kind="stream_error",
            ) from exc

    @property
    def text_so_far(self) -> str:
        """The text received until now (what a cancelled or failed turn leaves in an `incomplete` message)."""
        return self._assembler.text

    def finished(self) -> FinishedTurn:
        """The assembled turn, once the stream has ended; UpstreamError for unparseable tool arguments."""
        if not self._complete:
            raise RuntimeError("the turn's stream has not been read to its end")
        return self._assembler.finish()
