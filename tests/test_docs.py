"""The API docs at /docs, rendered by a real headless browser with the internet unreachable, and the OpenAPI
description behind them: the official operation ids, the error envelope instead of FastAPI's 422, response
schemas."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from emulator.operations import OPERATIONS
from tests.server import RunningServer

CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
OFFICIAL = json.loads((Path(__file__).resolve().parents[1] / "emulator" / "openapi_official.json").read_text())


def _template(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    """Headless Chromium that cannot resolve any host but the loopback, and records every request it makes."""
    options = webdriver.ChromeOptions()
    for argument in (
        "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,2000",
        # No name resolves but the loopback's, and everything else goes to a proxy where nothing listens.
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1", "--proxy-server=http://127.0.0.1:9",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def _requested_urls(driver: webdriver.Chrome) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def test_docs_render_every_operation_offline(
    server: RunningServer, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    browser.get(f"{server.root_url}/docs")
    WebDriverWait(browser, 30).until(lambda driver: driver.find_elements(By.ID, "operations-Runs-createRun"))
    rendered = {
        element.get_attribute("id").rpartition("-")[2]
        for element in browser.find_elements(By.CSS_SELECTOR, ".opblock")
    }
    assert {name for _method, _path, name in OPERATIONS} - rendered == {"deleteModel"}  # no fine-tuned models
    assert browser.find_element(By.ID, "operations-Runs-submitToolOuputsToRun").is_displayed()
    assert browser.find_element(By.CSS_SELECTOR, ".info .title").text.startswith("OpenAI Assistants API v2 emulator")
    browser.save_screenshot(str(tmp_path / "docs.png"))  # to look at: pytest's tmp dir for this test

    urls = _requested_urls(browser)
    assert f"{server.root_url}/docs/assets/swagger-ui-bundle.js" in urls
    assert f"{server.root_url}/_emulator/openapi.json" in urls
    outside = [url for url in urls if not url.startswith(f"{server.root_url}/") and not url.startswith("data:")]
    assert outside == [], "the docs page fetched something from outside 127.0.0.1"


def test_the_old_docs_address_moves_to_docs(server: RunningServer) -> None:
    response = httpx.get(f"{server.root_url}/_emulator/docs")
    assert response.status_code == 308 and response.headers["location"] == "/docs"
    page = httpx.get(f"{server.root_url}/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "/docs/assets/swagger-ui-bundle.js" in page.text and "cdn" not in page.text


def _described(server: RunningServer) -> dict[str, Any]:
    response = httpx.get(f"{server.root_url}/_emulator/openapi.json")
    assert response.status_code == 200
    return response.json()


def test_operation_ids_are_the_official_ones(server: RunningServer) -> None:
    """For every path and method both the app and the official spec have, the same operationId."""
    ours = {
        f"{method.upper()} {_template(path)}": operation["operationId"]
        for path, item in _described(server)["paths"].items()
        for method, operation in item.items()
    }
    theirs = {
        f"{key.split(' ')[0]} {_template(key.split(' ')[1])}": operation["operationId"]
        for key, operation in OFFICIAL["operations"].items()
    }
    shared = set(ours) & set(theirs)
    assert len(shared) == len(theirs) - 1, sorted(set(theirs) - set(ours))  # all but DELETE /v1/models/{}
    assert {key: ours[key] for key in shared} == {key: theirs[key] for key in shared}
    assert ours["POST /v1/threads/{}/runs/{}/submit_tool_outputs"] == "submitToolOuputsToRun"
    assert len(set(ours.values())) == len(ours), "operation ids are unique"


def test_errors_are_the_openai_envelope_and_responses_have_schemas(server: RunningServer) -> None:
    document = _described(server)
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    error = {"$ref": "#/components/schemas/ErrorResponse"}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert "422" not in responses, (method, path)
            for status in ("400", "404"):
                assert responses[status]["content"]["application/json"]["schema"] == error, (method, path, status)
    create_run = document["paths"]["/v1/threads/{thread_id}/runs"]["post"]
    assert create_run["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/RunObject"
    }
    assert schemas["RunObject"] == OFFICIAL["components"]["schemas"]["RunObject"]
    assert set(schemas["Error"]["required"]) == {"message", "type", "param", "code"}
    assert document["components"]["securitySchemes"]["ApiKeyAuth"] == {
        "type": "http", "scheme": "bearer", "description": "Any key; each key is its own tenant."
    }
    refs = set(re.findall(r'"#/components/schemas/([^"]+)"', json.dumps(document)))
    assert refs <= set(schemas), "every schema referenced is defined"


def test_the_docs_add_no_catch_all_route(tmp_path: Path) -> None:
    """A mount (or any route only a regex matches) before the API's routes would send every request through
    FastAPI's routing instead of `api.fast_routes`: twice the CPU per request."""
    from emulator.api.fast_routes import DirectRoutes
    from emulator.app import create_app
    from emulator.settings import Settings

    app = create_app(Settings(data_dir=tmp_path))
    direct = DirectRoutes(app.router, app)
    assert [regex.pattern for _position, regex in direct.catch_all if regex is not None] == [
        "^/v1/models/(?P<model>.*)$"
    ]
    assert all(regex is not None for _position, regex in direct.catch_all), "no mount"
    assert direct.match("GET", "/docs/assets/swagger-ui.css") is not None


def test_every_documented_operation_id_is_one_a_fault_rule_accepts(server: RunningServer, api_key: str) -> None:
    """Fault rules match on operation ids: the ones the docs show are the ones the control plane takes."""
    documented = sorted(
        operation["operationId"]
        for path, item in _described(server)["paths"].items()
        if path.startswith("/v1/")
        for operation in item.values()
    )
    rules = [{"match": {"operation": name}, "effect": {"type": "latency", "ms": 0}} for name in documented]
    headers = {"Authorization": f"Bearer {api_key}"}
    added = httpx.post(f"{server.root_url}/_emulator/faults", json={"rules": rules}, headers=headers)
    assert added.status_code == 200, added.text
    assert sorted(rule["match"]["operation"] for rule in added.json()["data"]) == documented
    httpx.delete(f"{server.root_url}/_emulator/faults", headers=headers).raise_for_status()
