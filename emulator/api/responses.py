"""The JSON response every endpoint returns: compact, UTF-8, `application/json`."""

from __future__ import annotations

import json
from typing import Any

from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException
from starlette.responses import Response

from emulator.errors import INVALID_JSON_MESSAGE, APIError, InvalidRequest, NotFound


class OpenAIJSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()


def ok(
    body: Any,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    background: BackgroundTask | None = None,
) -> OpenAIJSON:
    return OpenAIJSON(body, status_code=status_code, headers=headers, background=background)


def error_response(error: APIError) -> OpenAIJSON:
    """The OpenAI error envelope, with the error's status and headers."""
    return OpenAIJSON(error.body(), status_code=error.status, headers=error.headers)


def http_error_response(method: str, path: str, exc: HTTPException) -> OpenAIJSON:
    """Starlette's routing errors (no such URL, wrong method) and `HTTPException`s in the envelope."""
    if exc.status_code == 404:
        return error_response(NotFound(f"Invalid URL ({method} {path})"))
    if exc.status_code == 405:
        return error_response(InvalidRequest(f"Invalid method for URL ({method} {path})"))
    if exc.detail == BODY_NOT_PARSED:
        return error_response(InvalidRequest(INVALID_JSON_MESSAGE))
    return OpenAIJSON(InvalidRequest(str(exc.detail)).body(), status_code=exc.status_code)


BODY_NOT_PARSED = "There was an error parsing the body"
"""FastAPI's detail for a body it could not read or decode (invalid UTF-8, nested too deep): to the client, like
any body that is not JSON, the real API's invalid-JSON error."""
