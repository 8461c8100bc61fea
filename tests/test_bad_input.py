"""Every bad input is a 400 (or a 413) in the error envelope, never a 500, and nothing of it is stored.

Each case goes over real HTTP, raw (a lone surrogate cannot even be sent by the SDK) or through the SDK, and
compares the tenant's rows and the files on disk before and after.
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from emulator import limits
from tests.server import RunningServer
from tests.storage import query, tenant_of

TENANT_TABLES = (
    "assistants", "threads", "messages", "files", "runs", "run_steps", "vector_stores", "vector_store_files",
    "vector_store_file_batches",
)
JSON_TYPE = {"Content-Type": "application/json"}


def stored(server: RunningServer, api_key: str) -> dict[str, Any]:
    """What the tenant has: its rows in every table, and every file under the data dir."""
    counts = ", ".join(f"(SELECT COUNT(*) FROM {table} WHERE tenant = :tenant)" for table in TENANT_TABLES)
    rows = dict(zip(TENANT_TABLES, query(server, f"SELECT {counts}", tenant=tenant_of(api_key))[0], strict=True))
    files = sorted(str(path.relative_to(server.data_dir)) for path in (server.data_dir / "files").rglob("*"))
    return {"rows": rows, "files": files}


def assert_refused(
    response: httpx.Response, *, status: int = 400, param: str | None, says: str, code: str | None = "invalid_value"
) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param, error
    assert error["code"] == code, error
    assert says in error["message"], error["message"]


def post_raw(http: httpx.Client, path: str, body: bytes) -> httpx.Response:
    return http.post(path, content=body, headers=JSON_TYPE)


# --- One rule for every string: no lone surrogate, no NUL --------------------------------------------------------

SURROGATE = "contains a lone surrogate (U+D800), which is not valid Unicode"
NUL = "contains a NUL character (U+0000), which is not accepted in text"


@pytest.mark.parametrize(
    ("path", "body", "param", "says"),
    [
        (
            "/threads", b'{"metadata": {"user": "\\ud800"}}', "metadata.user",
            f"Invalid 'metadata.user': string {SURROGATE}",
        ),
        ("/threads", b'{"metadata": {"\\ud800": "x"}}', "metadata", f"Invalid 'metadata': a key {SURROGATE}"),
        ("/threads", b'{"metadata": {"user": "a\\u0000b"}}', "metadata.user", f"string {NUL}"),
        ("/threads", b'{"metadata": {"a\\u0000": "x"}}', "metadata", f"a key {NUL}"),
        (
            "/threads",
            b'{"messages": [{"role": "user", "content": [{"type": "text", "text": "\\udfff"}]}]}',
            "messages[0].content[0].text",
            "lone surrogate (U+DFFF)",
        ),
        ("/assistants", b'{"model": "gpt-4o", "name": "a\\u0000b"}', "name", f"Invalid 'name': string {NUL}"),
        ("/assistants", b'{"model": "gpt-4o", "instructions": "\\ud800"}', "instructions", SURROGATE),
        (
            "/assistants",
            b'{"model": "gpt-4o", "tools": [{"type": "function", "function": '
            b'{"name": "f", "description": "\\ud800"}}]}',
            "tools[0].function.description",
            SURROGATE,
        ),
        ("/vector_stores", b'{"name": "\\ud800"}', "name", SURROGATE),
    ],
    ids=[
        "metadata-value", "metadata-key", "metadata-value-nul", "metadata-key-nul", "text-part", "assistant-name-nul",
        "instructions", "function-description", "vector-store-name",
    ],
)
def test_text_that_is_not_unicode_or_holds_nul_is_refused_in_any_field(
    server: RunningServer, http: httpx.Client, api_key: str, path: str, body: bytes, param: str, says: str
) -> None:
    before = stored(server, api_key)
    assert_refused(post_raw(http, path, body), param=param, says=says)
    assert stored(server, api_key) == before


def test_a_vector_store_search_query_with_a_lone_surrogate_is_refused(
    server: RunningServer, http: httpx.Client, client: OpenAI, api_key: str
) -> None:
    store = client.vector_stores.create(name="docs")
    before = stored(server, api_key)
    response = post_raw(http, f"/vector_stores/{store.id}/search", b'{"query": "caf\\ud800"}')
    assert_refused(response, param="query", says=f"Invalid 'query': string {SURROGATE}")
    assert stored(server, api_key) == before


def test_nul_in_an_assistant_name_or_message_is_refused_through_the_sdk(
    server: RunningServer, client: OpenAI, api_key: str
) -> None:
    thread = client.beta.threads.create()
    before = stored(server, api_key)
    with pytest.raises(openai.BadRequestError) as refused:
        client.beta.assistants.create(model="gpt-4o", name="bad\x00name")
    assert refused.value.body["param"] == "name"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as refused:
        client.beta.threads.messages.create(thread.id, role="user", content="hello\x00world")
    assert refused.value.body["param"] == "content"  # type: ignore[index]
    assert NUL in refused.value.message
    assert stored(server, api_key) == before


def test_a_path_id_with_nul_is_an_id_that_does_not_exist(client: OpenAI, http: httpx.Client) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        client.beta.threads.retrieve("thread_\x00")
    assert missing.value.body == {  # type: ignore[comparison-overlap]
        "message": "No thread found with id 'thread_\N{REPLACEMENT CHARACTER}'.",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    assistant = client.beta.assistants.create(model="gpt-4o")
    response = http.get(f"/assistants/{assistant.id}%00")
    assert response.status_code == 404
    replaced = f"{assistant.id}\N{REPLACEMENT CHARACTER}"
    assert response.json()["error"]["message"] == f"No assistant found with id '{replaced}'."
    file_response = http.get("/files/file-abc%00")
    assert file_response.status_code == 404
    assert file_response.json()["error"]["message"] == "No such File object: file-abc\N{REPLACEMENT CHARACTER}"


def test_a_list_cursor_or_filter_with_nul_names_nothing(client: OpenAI, http: httpx.Client) -> None:
    client.beta.assistants.create(model="gpt-4o")
    response = http.get("/assistants", params={"after": "asst_\x00"})
    assert_refused(
        response, param="after", code=None,
        says="Invalid 'after': no object with id 'asst_\N{REPLACEMENT CHARACTER}' in this list.",
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    listed = http.get(f"/threads/{thread.id}/messages", params={"run_id": "run_\x00"})
    assert listed.status_code == 200, listed.text
    assert listed.json()["data"] == []


# --- Nesting: bounded before anything recursive reads it -----------------------------------------------------------

def nested_schema(levels: int) -> dict[str, Any]:
    """A JSON Schema `levels` objects deep (an array of arrays of ...)."""
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(levels - 1):
        schema = {"type": "array", "items": schema}
    return schema


def function_tool(parameters: dict[str, Any]) -> dict[str, Any]:
    return {"type": "function", "function": {"name": "deep", "parameters": parameters}}


DEPTH_SAYS = f"JSON nested too deeply. Expected at most {limits.JSON_MAX_DEPTH} levels of nesting"


def test_a_function_schema_nested_200_deep_is_refused_through_the_sdk(
    server: RunningServer, client: OpenAI, api_key: str
) -> None:
    before = stored(server, api_key)
    with pytest.raises(openai.BadRequestError) as refused:
        client.beta.assistants.create(model="gpt-4o", tools=[function_tool(nested_schema(200))])  # type: ignore[list-item]
    assert refused.value.status_code == 400
    assert refused.value.body["param"] == "tools"  # type: ignore[index]
    assert f"Invalid 'tools': {DEPTH_SAYS}" in refused.value.message
    assert stored(server, api_key) == before


def test_nesting_is_accepted_up_to_the_bound_and_refused_one_past_it(
    server: RunningServer, http: httpx.Client, api_key: str
) -> None:
    """The body, `tools`, the tool and `function` are 4 levels: the schema takes the rest."""
    at_bound = http.post(
        "/assistants", json={"model": "gpt-4o", "tools": [function_tool(nested_schema(limits.JSON_MAX_DEPTH - 4))]}
    )
    assert at_bound.status_code == 200, at_bound.text
    before = stored(server, api_key)
    one_past = http.post(
        "/assistants", json={"model": "gpt-4o", "tools": [function_tool(nested_schema(limits.JSON_MAX_DEPTH - 3))]}
    )
    assert_refused(one_past, param="tools", says=DEPTH_SAYS)
    assert stored(server, api_key) == before


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        (
            "/assistants",
            {"model": "gpt-4o", "response_format": {"type": "json_schema", "json_schema": {
                "name": "deep", "schema": nested_schema(150)}}},
            "response_format",
        ),
        ("/threads", {"metadata": {"a": json.loads("[" * 100 + "]" * 100)}}, "metadata"),
        ("/threads", {"tool_resources": {"code_interpreter": {"file_ids": json.loads("[" * 80 + "]" * 80)}}},
         "tool_resources"),
    ],
    ids=["response-format", "metadata", "tool-resources"],
)
def test_any_json_nested_too_deep_is_refused(
    server: RunningServer, http: httpx.Client, api_key: str, path: str, body: dict[str, Any], param: str
) -> None:
    before = stored(server, api_key)
    assert_refused(http.post(path, json=body), param=param, says=f"Invalid '{param}': {DEPTH_SAYS}")
    assert stored(server, api_key) == before


# --- Uploads ------------------------------------------------------------------------------------------------------

BOUNDARY = "emulator-test-boundary"
MULTIPART = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


def multipart(*parts: tuple[bytes, bytes]) -> bytes:
    """A multipart body written byte by byte, so that its part headers can be as broken as a test needs."""
    body = b""
    for headers, content in parts:
        body += b"--" + BOUNDARY.encode() + b"\r\n" + headers + b"\r\n\r\n" + content + b"\r\n"
    return body + b"--" + BOUNDARY.encode() + b"--\r\n"


PURPOSE = (b'Content-Disposition: form-data; name="purpose"', b"assistants")


def file_part(filename: bytes) -> tuple[bytes, bytes]:
    return b'Content-Disposition: form-data; name="file"; filename="' + filename + b'"', b"hello"


@pytest.mark.parametrize(
    ("body", "param", "says", "code"),
    [
        (
            multipart(PURPOSE, file_part(b"a\rb.txt")),
            None, "Could not parse the multipart form: Did not find LF character at end of header", "invalid_multipart",
        ),
        (
            multipart((b'Content-Disposition: form-data;\r name="purpose"', b"assistants"), file_part(b"a.txt")),
            None, "Could not parse the multipart form", "invalid_multipart",
        ),
        (
            multipart(PURPOSE, file_part(b"a" * 5000 + b".txt")),
            None, "Could not parse the multipart form: Maximum header size exceeded", "invalid_multipart",
        ),
        (
            multipart(PURPOSE, file_part(b"a" * 300)),
            "file",
            "Invalid 'file': the file name is too long. Expected a name with at most 255 characters, but got one "
            "with 300 characters instead.",
            "invalid_value",
        ),
        (
            multipart(PURPOSE, file_part(b"a\x00b.txt")),
            "file", "the file name contains a control character (U+0000)", "invalid_value",
        ),
        (
            multipart(PURPOSE, file_part(b"a\tb.txt")),
            "file", "the file name contains a control character (U+0009)", "invalid_value",
        ),
        (
            multipart((b'Content-Disposition: form-data; name="purpose"', b"assist\x00ants"), file_part(b"a.txt")),
            "purpose", f"Invalid 'purpose': string {NUL}", "invalid_value",
        ),
    ],
    ids=["cr-in-filename", "cr-in-part-header", "filename-5000", "filename-300", "nul-in-filename",
         "tab-in-filename", "nul-in-purpose"],
)
def test_an_upload_that_does_not_parse_or_names_no_possible_file_is_refused_and_leaves_nothing(
    server: RunningServer, http: httpx.Client, api_key: str, body: bytes, param: str | None, says: str, code: str
) -> None:
    before = stored(server, api_key)
    response = http.post("/files", content=body, headers=MULTIPART)
    assert_refused(response, param=param, says=says, code=code)
    assert stored(server, api_key) == before
    assert not list((server.data_dir / "files").rglob("*.part"))


def test_an_upload_with_a_boundary_longer_than_the_parser_takes_is_refused(
    server: RunningServer, http: httpx.Client, api_key: str
) -> None:
    before = stored(server, api_key)
    boundary = "b" * 300
    body = f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nassistants\r\n--{boundary}--\r\n'
    response = http.post(
        "/files", content=body.encode(), headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    assert_refused(response, param=None, says="Boundary length 300 exceeds maximum of 256", code="invalid_multipart")
    assert stored(server, api_key) == before


def test_a_5000_character_file_name_is_refused_through_the_sdk(
    server: RunningServer, client: OpenAI, api_key: str
) -> None:
    before = stored(server, api_key)
    with pytest.raises(openai.BadRequestError) as refused:
        client.files.create(file=("a" * 5000 + ".txt", b"hello"), purpose="assistants")
    assert refused.value.body["type"] == "invalid_request_error"  # type: ignore[index]
    assert "Could not parse the multipart form" in refused.value.message
    assert stored(server, api_key) == before
    ok = client.files.create(file=("a" * 251 + ".txt", b"hello"), purpose="assistants")
    assert ok.filename == "a" * 251 + ".txt"


# --- Body size -----------------------------------------------------------------------------------------------------

TOO_LARGE = f"Request body too large: the maximum size of a request body is {limits.JSON_BODY_MAX_BYTES} bytes"


def test_a_json_body_over_the_limit_is_a_413_in_the_envelope_and_legal_bodies_are_far_below_it(
    server: RunningServer, client: OpenAI, http: httpx.Client, api_key: str
) -> None:
    """The limit is far above what the per-field limits allow, and uploads keep their own 512 MB rule."""
    assistant = client.beta.assistants.create(
        model="gpt-4o", instructions="i" * limits.ASSISTANT_INSTRUCTIONS_MAX_CHARS,
        tools=[function_tool(nested_schema(3)) | {"function": {"name": f"f{n}", "description": "d" * 1024}}
               for n in range(limits.ASSISTANT_MAX_TOOLS)],  # type: ignore[misc]
    )
    assert len(assistant.tools) == limits.ASSISTANT_MAX_TOOLS
    upload = b"\0" * (limits.JSON_BODY_MAX_BYTES + 1024)
    uploaded = client.files.create(file=("big.bin", upload), purpose="assistants")
    assert uploaded.bytes == len(upload)
    before = stored(server, api_key)
    value = "x" * (limits.JSON_BODY_MAX_BYTES - 20)
    response = http.post("/threads", content=json.dumps({"metadata": {"a": value}}).encode(), headers=JSON_TYPE)
    assert_refused(response, status=413, param=None, says=TOO_LARGE, code="request_too_large")
    assert stored(server, api_key) == before


def test_a_body_over_the_limit_is_refused_while_it_is_read(server: RunningServer, api_key: str) -> None:
    """A chunked body that never ends: the 413 comes once the limit is passed, not after the (absent) end."""
    host, port = server.root_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(
            b"POST /v1/threads HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + api_key.encode() + b"\r\nOpenAI-Beta: assistants=v2\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b'{"metadata": {"a": "' + b"x" * (1024 * 1024)
        sent = 0
        while sent <= limits.JSON_BODY_MAX_BYTES:
            connection.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            sent += len(chunk)
        answer = _read_response(connection)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), head
    error = json.loads(body)["error"]
    assert error["code"] == "request_too_large" and TOO_LARGE in error["message"]


def test_a_declared_length_over_the_limit_is_refused_before_reading(server: RunningServer, api_key: str) -> None:
    host, port = server.root_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(
            b"POST /v1/assistants HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + api_key.encode() + b"\r\nOpenAI-Beta: assistants=v2\r\n"
            b"Content-Length: 300000000\r\n\r\n{"
        )
        answer = _read_response(connection)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def _read_response(connection: socket.socket) -> bytes:
    """One response with a `Content-Length`, read whole."""
    data = b""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        head, separator, body = data.partition(b"\r\n\r\n")
        if separator:
            lines = head.lower().split(b"\r\n")
            length = next(int(line.split(b":", 1)[1]) for line in lines if line.startswith(b"content-length"))
            if len(body) >= length:
                return data
        received = connection.recv(65536)
        if not received:
            return data
        data += received
    raise AssertionError(f"no whole response in 30 s: {data[:200]!r}")


# --- Message parts -------------------------------------------------------------------------------------------------

URL_SAYS = "Expected a valid URL, but got a value with an invalid format."


@pytest.mark.parametrize("url", ["", "not a url", "ftp://example.com/a.png", "https://", "/relative/a.png",
                                 "https://exa mple.com/a.png", "javascript:alert(1)", "http://[::1"])
def test_an_image_url_that_is_not_an_absolute_web_or_data_url_is_refused(
    server: RunningServer, client: OpenAI, http: httpx.Client, api_key: str, url: str
) -> None:
    thread = client.beta.threads.create()
    before = stored(server, api_key)
    part = {"type": "image_url", "image_url": {"url": url}}
    response = http.post(f"/threads/{thread.id}/messages", json={"role": "user", "content": [part]})
    assert_refused(response, param="content[0].image_url.url", says=f"Invalid 'content[0].image_url.url': {URL_SAYS}")
    created = http.post("/threads", json={"messages": [{"role": "user", "content": [part]}]})
    assert_refused(created, param="messages[0].content[0].image_url.url", says=URL_SAYS)
    assert stored(server, api_key) == before


def test_image_parts_that_are_kept_are_web_or_data_urls_and_files_of_this_tenant(
    server: RunningServer, client: OpenAI, http: httpx.Client, api_key: str
) -> None:
    """The parts accepted read back through the SDK; an empty URL or another tenant's file are refused."""
    thread = client.beta.threads.create()
    for url in ("https://example.com/cat.png", "http://localhost:8080/a.png?size=2", "data:image/png;base64,aGk="):
        message = client.beta.threads.messages.create(
            thread.id, role="user", content=[{"type": "image_url", "image_url": {"url": url}}]
        )
        assert message.content[0].image_url.url == url  # type: ignore[union-attr]
    mine = client.files.create(file=("cat.png", b"\x89PNG not really"), purpose="vision")
    client.beta.threads.messages.create(
        thread.id, role="user", content=[{"type": "image_file", "image_file": {"file_id": mine.id}}]
    )
    other = OpenAI(base_url=server.base_url, api_key=api_key + "-other", max_retries=0)
    theirs = other.files.create(file=("cat.png", b"\x89PNG not really"), purpose="vision")
    before = stored(server, api_key)
    for file_id in (theirs.id, "file-does-not-exist"):
        with pytest.raises(openai.BadRequestError) as refused:
            client.beta.threads.messages.create(
                thread.id, role="user", content=[{"type": "image_file", "image_file": {"file_id": file_id}}]
            )
        assert f"no file found with id '{file_id}'" in refused.value.message
    with pytest.raises(openai.BadRequestError) as refused:
        client.beta.threads.messages.create(
            thread.id, role="user", content=[{"type": "image_url", "image_url": {"url": ""}}]
        )
    assert refused.value.body["param"] == "content[0].image_url.url"  # type: ignore[index]
    assert stored(server, api_key) == before
    listed = client.beta.threads.messages.list(thread.id)
    assert len(listed.data) == 4


# --- Numbers past what a column holds -----------------------------------------------------------------------------

@pytest.mark.parametrize("field", ["max_prompt_tokens", "max_completion_tokens"])
def test_a_token_bound_past_what_an_integer_column_holds_is_refused(
    server: RunningServer, client: OpenAI, api_key: str, field: str
) -> None:
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create()
    before = stored(server, api_key)
    with pytest.raises(openai.BadRequestError) as refused:
        client.beta.threads.runs.create(thread.id, assistant_id=assistant.id, **{field: 10**30})  # type: ignore[arg-type]
    assert refused.value.body == {  # type: ignore[comparison-overlap]
        "message": f"Invalid '{field}': integer above maximum value. Expected a value <= "
        f"{limits.RUN_MAX_TOKEN_BOUND}, but got {10**30} instead.",
        "type": "invalid_request_error",
        "param": field,
        "code": "integer_above_max_value",
    }
    assert stored(server, api_key) == before
    run = client.beta.threads.runs.create(thread.id, assistant_id=assistant.id, **{field: limits.RUN_MAX_TOKEN_BOUND})
    assert getattr(run, field) == limits.RUN_MAX_TOKEN_BOUND


def test_a_usage_time_range_past_what_a_timestamp_holds_is_refused(control: httpx.Client) -> None:
    response = control.get("/usage", params={"start": 0, "end": 10**30})
    assert_refused(response, param="end", code="integer_above_max_value", says="Invalid 'end': integer above maximum")
