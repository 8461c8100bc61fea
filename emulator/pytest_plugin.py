"""pytest plugin (installed with the package, entry point `pytest11`): an emulator for your test suite.

Fixtures:
- `emulator_server` (session): a real server on a free port with a temporary SQLite database. Under
  pytest-xdist every worker gets its own.
- `emulator` (per test): a fresh tenant on that server with an `openai.OpenAI` client (`emulator.client`)
  and helpers: `script(*turns)`, `faults(*rules)`, `advance(seconds)`, `consumed_turns()`,
  `rate_limits(**config)`, `latency(**profile)`, `usage(**params)`.
- `openai_client`: shortcut for `emulator.client`.

    def test_weather(emulator):
        emulator.script({"type": "function_calls", "calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]},
                        {"type": "text", "text": "Sunny in Paris."})
        ...
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

import httpx
import pytest

from emulator.testing import RunningServer, run_server

if TYPE_CHECKING:
    from openai import OpenAI


class Emulator:
    """One tenant of a running emulator, with the control plane at hand."""

    def __init__(self, server: RunningServer, api_key: str) -> None:
        self.server = server
        self.api_key = api_key
        self.base_url = server.base_url
        self._control = httpx.Client(
            base_url=f"{server.root_url}/_emulator", headers={"Authorization": f"Bearer {api_key}"}, timeout=30
        )
        self._client: OpenAI | None = None

    @property
    def client(self) -> OpenAI:
        if self._client is None:
            from openai import OpenAI

            self._client = OpenAI(base_url=self.base_url, api_key=self.api_key, max_retries=0)
        return self._client

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """The control plane's JSON answer (always an object)."""
        response = self._control.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise AssertionError(f"{method} /_emulator{path} failed: {response.status_code} {response.text}")
        return cast(dict[str, Any], response.json())

    def script(self, *turns: dict[str, Any]) -> list[dict[str, Any]]:
        """Queue model turns (played in order by the runs they match)."""
        return cast(list[dict[str, Any]], self._call("POST", "/script", json={"turns": list(turns)})["data"])

    def consumed_turns(self) -> list[dict[str, Any]]:
        """The turns played so far, with the run that played each and the prompt it answered."""
        return cast(list[dict[str, Any]], self._call("GET", "/script/consumed")["data"])

    def faults(self, *rules: dict[str, Any]) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], self._call("POST", "/faults", json={"rules": list(rules)})["data"])

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    def advance(self, seconds: int) -> int:
        """Move the server's clock forward (for every tenant); returns the new time."""
        return cast(int, self._call("POST", "/clock/advance", json={"seconds": seconds})["now"])

    def now(self) -> int:
        return cast(int, self._call("GET", "/clock")["now"])

    def rate_limits(self, **config: Any) -> dict[str, Any]:
        return cast(dict[str, Any], self._call("POST", "/rate_limits", json=config)["rate_limits"])

    def latency(self, **profile: Any) -> dict[str, Any]:
        return cast(dict[str, Any], self._call("POST", "/latency", json=profile)["latency"])

    def usage(self, **params: Any) -> dict[str, Any]:
        return self._call("GET", "/usage", params=params)

    def close(self) -> None:
        self._control.close()
        if self._client is not None:
            self._client.close()


@pytest.fixture(scope="session")
def emulator_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with run_server(tmp_path_factory.mktemp("assistants-emulator")) as server:
        yield server


@pytest.fixture
def emulator(emulator_server: RunningServer) -> Iterator[Emulator]:
    tenant = Emulator(emulator_server, f"sk-emulator-{uuid.uuid4().hex}")
    yield tenant
    tenant.close()


@pytest.fixture
def openai_client(emulator: Emulator) -> OpenAI:
    return emulator.client
