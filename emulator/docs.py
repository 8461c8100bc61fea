"""The API docs at `/docs`: Swagger UI with its script and styles served by the emulator, so that they work
offline (FastAPI's own page loads them from a CDN).

The assets are the package data of `fastapi-offline` (Swagger UI 5, MIT), served by a plain route for the few
files the page uses: a mount would be a catch-all that `api.fast_routes` must hand every request to FastAPI for.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from emulator.api.responses import error_response
from emulator.errors import NotFound

ASSETS = Path(str(files("fastapi_offline") / "static"))
_SERVED = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon.png": "image/png",
}


def install(app: FastAPI) -> None:
    """Add `/docs`, its assets under `/docs/assets/`, and a redirect from the former `/_emulator/docs`."""
    openapi_url = app.openapi_url or "/_emulator/openapi.json"

    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - API docs",
            swagger_js_url="/docs/assets/swagger-ui-bundle.js",
            swagger_css_url="/docs/assets/swagger-ui.css",
            swagger_favicon_url="/docs/assets/favicon.png",
        )

    async def asset(name: str) -> Response:
        media_type = _SERVED.get(name)
        if media_type is None:
            return error_response(NotFound(f"Invalid URL (GET /docs/assets/{name})"))
        return FileResponse(ASSETS / name, media_type=media_type)

    async def moved() -> RedirectResponse:
        return RedirectResponse("/docs", status_code=308)

    app.add_api_route("/docs", swagger_ui, include_in_schema=False)
    app.add_api_route("/docs/assets/{name}", asset, include_in_schema=False)
    app.add_api_route("/_emulator/docs", moved, include_in_schema=False)
