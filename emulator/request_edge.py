"""What every request is held to before any route sees it (pure ASGI, outside both request paths).

- Its body is read here, up to `max_body_bytes`, then handed on: a larger one is a 413 as soon as that is known
  (from `Content-Length` before reading anything, or while reading), and is never held whole. The routes that
  stream their body to disk (the file upload, under its own size rule) are left alone.
- Its path and query string hold no NUL: one is read as U+FFFD, the character invalid UTF-8 in a URL already
  decodes to. An id with NUL then names nothing, on SQLite and PostgreSQL alike (the usual 404, or the usual 400
  for a list cursor), instead of reaching a database that cannot compare it.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from emulator.api.responses import error_response
from emulator.errors import PayloadTooLarge

_REPLACEMENT = "\N{REPLACEMENT CHARACTER}"
_ENCODED_REPLACEMENT = b"%EF%BF%BD"


class RequestEdge:
    def __init__(self, app: ASGIApp, max_body_bytes: int, streamed: frozenset[tuple[str, str]]) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.streamed = streamed
        """(method, path) of the routes that read their own body as a stream."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        _without_nul(scope)
        if (scope["method"], scope["path"]) in self.streamed:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = headers.get("content-length", "")
        if not declared and "chunked" not in headers.get("transfer-encoding", "").lower():
            await self.app(scope, receive, send)  # no body (HTTP/1.1: neither a length nor chunks): nothing to hold
            return
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._refuse(scope, receive, send)
            return
        body = await self._read(receive)
        if body is None:
            await self._refuse(scope, receive, send)
        elif body["type"] == "http.request":
            await self.app(scope, _replay(body, receive), send)

    async def _read(self, receive: Receive) -> Message | None:
        """The whole body as one message, the client's disconnect (no one to answer), or None once it is over
        the limit."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return message
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = PayloadTooLarge(
            f"Request body too large: the maximum size of a request body is {self.max_body_bytes} bytes "
            "(files are uploaded with POST /v1/files).",
            code="request_too_large",
        )
        await error_response(error)(scope, receive, send)


def _replay(first: Message, receive: Receive) -> Receive:
    """The body already read, then whatever the client sends next (its disconnect, which a stream watches for)."""
    pending: Message | None = first

    async def replayed() -> Message:
        nonlocal pending
        if pending is not None:
            message, pending = pending, None
            return message
        return await receive()

    return replayed


def _without_nul(scope: Scope) -> None:
    if "\x00" in scope["path"]:
        scope["path"] = scope["path"].replace("\x00", _REPLACEMENT)
    query: bytes = scope.get("query_string", b"")
    if b"%00" in query or b"\x00" in query:
        scope["query_string"] = query.replace(b"%00", _ENCODED_REPLACEMENT).replace(b"\x00", _ENCODED_REPLACEMENT)
