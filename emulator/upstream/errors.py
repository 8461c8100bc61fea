"""Every way an upstream turn can fail, as one exception carrying the run's `last_error.code`."""

from __future__ import annotations

from typing import Literal

ErrorCode = Literal["rate_limit_exceeded", "server_error"]
FailureKind = Literal["status", "timeout", "connect", "stream_cut", "malformed", "stream_error", "invalid_arguments"]


class UpstreamError(Exception):
    """The upstream could not answer: the run ends `failed` with `last_error = {code, message}`.

    `code` is `rate_limit_exceeded` for a 429 and `server_error` for everything else; `message` names the upstream
    problem (its status and URL, a timeout, a refused connection, a cut stream, what was malformed) and never a
    credential. `kind` and `status` are for logs and tests.
    """

    def __init__(self, code: ErrorCode, message: str, *, kind: FailureKind, status: int | None = None) -> None:
        super().__init__(message)
        self.code: ErrorCode = code
        self.message = message
        self.kind: FailureKind = kind
        self.status = status

    def __repr__(self) -> str:
        return (
            f"UpstreamError(code={self.code!r}, kind={self.kind!r}, status={self.status!r}, message={self.message!r})"
        )
