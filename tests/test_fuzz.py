"""Fuzzing: schemathesis against the app's own OpenAPI description, on a real server of its own: no request,
valid or not, gets a server error, and every refusal is the error envelope.

Deterministic (hypothesis derandomized, no example database) and bounded (`EXAMPLES` per operation and mode). Each
operation is fuzzed twice: with data that fits its schema (positive) and with data that does not (negative); path
ids are real objects of the fuzzing tenant in half the cases, so requests reach past the 404s; in half the valid
cases one string of the body (a value or a key) is replaced by a value no string may be, and that request must be
a 400 whatever the operation (see `POISONS`). The upload, whose
body the OpenAPI description does not spell out, gets raw multipart bodies of its own.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from emulator.app import create_app
from tests.extra_server import extra_server
from tests.server import RunningServer

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "10"))
"""Per operation and mode: about 900 requests, about 30 s on two shared cores. Bigger, by hand: FUZZ_EXAMPLES=80."""
UPLOAD_EXAMPLES = int(os.environ.get("FUZZ_UPLOAD_EXAMPLES", "150"))
API_KEY = "sk-fuzz-api"
CONTROL_KEY = "sk-fuzz-control"
"""The control plane is fuzzed as another tenant: faults, latency and limits it sets never touch the API's."""
BETA = {"OpenAI-Beta": "assistants=v2"}


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with extra_server(tmp_path_factory.mktemp("fuzzed")) as running:
        yield running


def real_ids(server: RunningServer) -> dict[str, str]:
    """One object of each kind for the fuzzing tenant, by the name of the path parameter that takes its id."""
    with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {API_KEY}", **BETA}) as http:
        file = http.post("/files", files={"file": ("notes.txt", b"The sky is blue.")}, data={"purpose": "assistants"})
        file_id = file.json()["id"]
        store = http.post("/vector_stores", json={"file_ids": [file_id]}).json()
        batch = http.post(f"/vector_stores/{store['id']}/file_batches", json={"file_ids": [file_id]}).json()
        assistant = http.post("/assistants", json={"model": "gpt-4o"}).json()
        thread = http.post("/threads", json={"messages": [{"role": "user", "content": "hello"}]}).json()
        message = http.get(f"/threads/{thread['id']}/messages").json()["data"][0]
        run = http.post(f"/threads/{thread['id']}/runs", json={"assistant_id": assistant["id"]}).json()
        steps = http.get(f"/threads/{thread['id']}/runs/{run['id']}/steps").json()["data"]
    return {
        "file_id": file_id, "vector_store_id": store["id"], "batch_id": batch["id"], "assistant_id": assistant["id"],
        "thread_id": thread["id"], "message_id": message["id"], "run_id": run["id"], "step_id": steps[0]["id"],
        "model": "gpt-4o",
    }


def check_answer(response: requests.Response, what: str) -> str | None:
    """Why this answer is wrong, if it is: a server error, or a refusal outside the error envelope."""
    if response.status_code >= 500:
        return f"{what}: {response.status_code} {response.text[:300]}"
    if response.status_code >= 400:
        try:
            error = response.json()["error"]
            assert set(error) == {"message", "type", "param", "code"} and isinstance(error["message"], str)
        except (ValueError, KeyError, TypeError, AssertionError):
            return f"{what}: {response.status_code} outside the error envelope: {response.text[:300]}"
    return None


def fuzz(test: Callable[..., None], *strategies: st.SearchStrategy[Any], examples: int = EXAMPLES) -> None:
    settings(
        max_examples=examples, derandomize=True, database=None, deadline=None,
        suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate],
    )(given(*strategies)(test))()


POISONS: tuple[Any, ...] = ("\ud800", "a\udfffb", "\x00", "nul\x00inside", json.loads("[" * 70 + "]" * 70))
"""Values no string of a body may be (a lone surrogate, NUL) or hold (nesting past the bound): put in place of one
string of a valid body, each makes the request a 400, whatever the operation."""


def poison_one_string(body: Any, poison: Any, pick: int) -> bool:
    """Put `poison` in place of one string of `body` (a value, or a key when `poison` is a string): the `pick`-th
    of its strings, counting round; False when the body has none."""
    places: list[tuple[Any, Any, bool]] = []
    stack = [body]
    while stack:
        value = stack.pop()
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        for key, item in items:
            if isinstance(item, str):
                places.append((value, key, False))
            elif isinstance(item, (dict, list)):
                stack.append(item)
            if isinstance(value, dict) and isinstance(poison, str):
                places.append((value, key, True))
    if not places:
        return False
    container, key, is_key = places[pick % len(places)]
    if is_key:
        container[poison] = container.pop(key)
    else:
        container[key] = poison
    return True


class Fuzzer:
    """Sends the cases of one operation and keeps what went wrong."""

    def __init__(self, server: RunningServer, session: requests.Session, ids: dict[str, str]) -> None:
        self.server = server
        self.session = session
        self.ids = ids
        self.sent = 0
        self.problems: list[str] = []

    def operation(self, operation: Any) -> None:
        control = operation.path.startswith("/_emulator")
        headers = {"Authorization": f"Bearer {CONTROL_KEY if control else API_KEY}", **BETA}
        modes = [GenerationMode.POSITIVE]
        if len(operation.query) or len(operation.body):  # any string is a valid path id: nothing else to break
            modes.append(GenerationMode.NEGATIVE)
        for mode in modes:
            cases = operation.as_strategy(generation_mode=mode)
            poisons = st.none() | st.tuples(st.sampled_from(POISONS), st.integers(min_value=0, max_value=99))
            try:
                fuzz(self.case, cases, st.booleans(), poisons, st.just(headers), st.just(mode))
            except Unsatisfiable:  # the schema leaves nothing that can be invalid (an untyped body, say)
                assert not mode.is_positive, f"{operation.method} {operation.path}: no valid data generated"

    def case(
        self, case: Any, use_real_ids: bool, poison: tuple[Any, int] | None, headers: dict[str, str],
        mode: GenerationMode,
    ) -> None:
        if use_real_ids and case.path_parameters:
            case.path_parameters = {name: self.ids.get(name, old) for name, old in case.path_parameters.items()}
        poisoned = poison is not None and isinstance(case.body, dict) and poison_one_string(case.body, *poison)
        response = case.call(base_url=self.server.root_url, session=self.session, headers=headers, timeout=60)
        self.sent += 1
        what = f"{case.method} {case.formatted_path} ({mode.value}{', poisoned' if poisoned else ''})"
        problem = check_answer(response, what)
        if problem is None and poisoned and response.status_code != 400:
            problem = f"{what}: {response.status_code}, not a 400: {response.text[:300]}"
        if problem is not None:
            self.problems.append(problem + f"\n  {case.as_curl_command(headers=headers)}")


def test_no_request_to_any_operation_gets_a_server_error(fuzzed: RunningServer) -> None:
    openapi_url = fuzzed.root_url + (create_app().openapi_url or "/openapi.json")
    schema = schemathesis.openapi.from_url(openapi_url)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 50, "the OpenAPI description lists the API"
    with requests.Session() as session:
        fuzzer = Fuzzer(fuzzed, session, real_ids(fuzzed))
        for operation in operations:
            started = time.perf_counter()
            fuzzer.operation(operation)
            if os.environ.get("FUZZ_TIMING"):
                print(f"{time.perf_counter() - started:6.2f}s {operation.method} {operation.path}")
    print(f"fuzzed {len(operations)} operations: {fuzzer.sent} requests, {len(fuzzer.problems)} problems")
    assert fuzzer.sent > len(operations) * EXAMPLES, fuzzer.sent
    assert not fuzzer.problems, "\n".join(fuzzer.problems[:20])


def test_no_upload_body_gets_a_server_error(fuzzed: RunningServer) -> None:
    """Multipart bodies with broken boundaries, part headers, file names and fields."""
    header_bytes = st.binary(max_size=60) | st.sampled_from([b"\r", b"\n", b"\x00", b'"', b";", b"\xff\xfe", b"*"])
    part_header = st.builds(
        lambda name, filename, extra: b'Content-Disposition: form-data; name="' + name + b'"'
        + (b'; filename="' + filename + b'"' if filename is not None else b"") + extra,
        st.sampled_from([b"file", b"purpose", b"expires_after[anchor]", b"expires_after[seconds]", b"other"]),
        st.none() | header_bytes,
        st.sampled_from([b"", b"\r\nContent-Type: text/plain", b"\r\nX: " + b"y" * 5000, b"\rbroken"]),
    )
    part = st.tuples(part_header, st.sampled_from([b"assistants", b"created_at", b"3600", b"hello"]) | st.binary())
    boundary = st.sampled_from([b"b", b"boundary-1", b"", b"x" * 300])
    problems: list[str] = []
    sent: list[int] = []

    def send(parts: list[tuple[bytes, bytes]], separator: bytes, ending: bytes) -> None:
        body = b"".join(b"--" + separator + b"\r\n" + headers + b"\r\n\r\n" + data + b"\r\n" for headers, data in parts)
        body += b"--" + separator + ending
        content_type = "multipart/form-data; boundary=" + separator.decode()
        response = requests.post(
            f"{fuzzed.base_url}/files", data=body, timeout=60,
            headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": content_type},
        )
        problem = check_answer(response, f"POST /v1/files {body[:200]!r}")
        sent.append(response.status_code)
        if problem is not None:
            problems.append(problem)

    endings = st.sampled_from([b"--\r\n", b"--", b"", b"\r\n"])
    fuzz(send, st.lists(part, max_size=4), boundary, endings, examples=UPLOAD_EXAMPLES)
    print(f"fuzzed the upload: {len(sent)} requests, {len(problems)} problems, statuses {sorted(set(sent))}")
    assert not problems, "\n".join(problems[:20])
