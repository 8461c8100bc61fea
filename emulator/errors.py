"""The one error type of the emulator, rendered as OpenAI's envelope.

Every failure a client can see is an `APIError`: `{"error": {"message", "type", "param", "code"}}` with the
HTTP status the real API used. FastAPI's own 422s are translated by `validation.py`; nothing else escapes.
"""

from __future__ import annotations

from typing import Any, ClassVar


class APIError(Exception):
    status: ClassVar[int] = 500
    type: ClassVar[str] = "server_error"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        error_type: str | None = None,
    ) -> None:
        super().__init__(message)
        self.error_type = error_type or self.type
        self.message = message
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.error_type, "param": self.param, "code": self.code}}


class InvalidRequest(APIError):
    status = 400
    type = "invalid_request_error"


class Unauthorized(APIError):
    status = 401
    type = "invalid_request_error"


class PermissionDenied(APIError):
    status = 403
    type = "invalid_request_error"


class NotFound(APIError):
    status = 404
    type = "invalid_request_error"

    @classmethod
    def object(cls, kind: str, object_id: str) -> NotFound:
        return cls(f"No {kind} found with id '{object_id}'.")


class PayloadTooLarge(APIError):
    status = 413
    type = "invalid_request_error"


class RateLimited(APIError):
    status = 429
    type = "requests"


SERVER_ERROR_MESSAGE = "The server had an error while processing your request. Sorry about that!"
"""The hosted API's words for an error of its own: in a 500's envelope and in a run's `last_error`."""


class ServerError(APIError):
    status = 500
    type = "server_error"


class ServiceUnavailable(APIError):
    status = 503
    type = "server_error"


def file_not_found(file_id: str) -> NotFound:
    """Files keep the real API's own wording, unlike the other objects."""
    return NotFound(f"No such File object: {file_id}")


INVALID_JSON_MESSAGE = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
    "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. "
    "If you have trouble figuring out how to fix this, please contact us through our help center at "
    "help.openai.com.)"
)
