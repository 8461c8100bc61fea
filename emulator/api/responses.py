"""The JSON response every endpoint returns: compact, UTF-8, `application/json`."""

from __future__ import annotations

import json
from typing import Any

from starlette.background import BackgroundTask
from starlette.responses import Response


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
