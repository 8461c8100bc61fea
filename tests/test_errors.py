"""The error envelope and every documented limit: exact status, message, type, param and code, and never
FastAPI's own 422 / `{"detail": ...}`."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from openai import BadRequestError, OpenAI

from tests.oracle import check_fields

INVALID_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP "
    "library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have "
    "trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)"
)

PYDANTIC_LABEL = re.compile(r"literal\[|tagged-union|union\[|function-(after|before|wrap)|nullable\[|list\[|\bstr\b")


def assert_error(
    response: httpx.Response, status: int, message: str, param: str | None = None, code: str | None = None
) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}, body
    check_fields(body["error"], "Error")
    assert body["error"] == {"message": message, "type": "invalid_request_error", "param": param, "code": code}


def assert_envelope(response: httpx.Response) -> dict[str, Any]:
    """Any error: OpenAI's envelope, never FastAPI's 422 or `detail`."""
    assert response.status_code != 422 and response.status_code >= 400, response.text
    body = response.json()
    assert set(body) == {"error"} and "detail" not in response.text, body
    check_fields(body["error"], "Error")
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


@pytest.fixture
def thread_id(http: httpx.Client) -> str:
    return http.post("/threads").json()["id"]


@pytest.fixture
def message_id(http: httpx.Client, thread_id: str) -> str:
    return http.post(f"/threads/{thread_id}/messages", json={"role": "user", "content": "hi"}).json()["id"]


@pytest.fixture
def assistant_id(http: httpx.Client) -> str:
    return http.post("/assistants", json={"model": "gpt-4o"}).json()["id"]


def function_tool(name: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "parameters": {"type": "object", "properties": {}}}}


# ---- unknown parameters -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/assistants", {"model": "gpt-4o", "foo": 1}),
        ("/assistants/{assistant}", {"foo": 1}),
        ("/threads", {"foo": 1}),
        ("/threads/{thread}", {"foo": 1}),
        ("/threads/{thread}/messages", {"role": "user", "content": "x", "foo": 1}),
        ("/threads/{thread}/messages/{message}", {"foo": 1}),
    ],
)
def test_unknown_parameter(
    http: httpx.Client, thread_id: str, message_id: str, assistant_id: str, path: str, body: dict[str, Any]
) -> None:
    url = path.format(thread=thread_id, message=message_id, assistant=assistant_id)
    assert_error(http.post(url, json=body), 400, "Unrecognized request argument supplied: foo")


def test_unknown_parameter_through_the_sdk(client: OpenAI) -> None:
    with pytest.raises(BadRequestError) as refused:
        client.beta.threads.create(extra_body={"foo": "bar"})
    assert refused.value.status_code == 400
    assert refused.value.body == {  # type: ignore[comparison-overlap]
        "message": "Unrecognized request argument supplied: foo",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }


def test_nested_unknown_parameters_name_their_path(http: httpx.Client, thread_id: str) -> None:
    assert_error(
        http.post("/threads", json={"messages": [{"role": "user", "content": "x", "foo": 1}]}),
        400,
        "Unrecognized request argument supplied: messages[0].foo",
    )
    assert_error(
        http.post(
            f"/threads/{thread_id}/messages",
            json={"role": "user", "content": [{"type": "text", "text": "a", "bar": 1}]},
        ),
        400,
        "Unrecognized request argument supplied: content[0].bar",
    )


# ---- wrong types, invalid JSON, bodies that are not objects ----------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "param", "expected", "got"),
    [
        ("/assistants", {"model": 5}, "model", "a string", "an integer"),
        ("/assistants", {"model": "gpt-4o", "temperature": "hot"}, "temperature", "a decimal", "a string"),
        ("/assistants", {"model": "gpt-4o", "top_p": "1"}, "top_p", "a decimal", "a string"),
        ("/assistants", {"model": "gpt-4o", "name": 7}, "name", "a string", "an integer"),
        ("/assistants", {"model": "gpt-4o", "tools": "all"}, "tools", "an array", "a string"),
        ("/assistants", {"model": "gpt-4o", "metadata": ["a"]}, "metadata", "an object", "an array"),
        ("/threads", {"metadata": "x"}, "metadata", "an object", "a string"),
        ("/threads", {"metadata": {"k": 1}}, "metadata.k", "a string", "an integer"),
        ("/threads", {"messages": {"role": "user"}}, "messages", "an array", "an object"),
        ("/threads/{thread}/messages", {"role": "user", "content": 5}, "content", "a string", "an integer"),
        ("/threads/{thread}/messages", {"role": True, "content": "x"}, "role", "a string", "a boolean"),
    ],
)
def test_wrong_types(
    http: httpx.Client, thread_id: str, path: str, body: dict[str, Any], param: str, expected: str, got: str
) -> None:
    assert_error(
        http.post(path.format(thread=thread_id), json=body),
        400,
        f"Invalid type for '{param}': expected {expected}, but got {got} instead.",
        param,
        "invalid_type",
    )


def test_wrong_type_in_the_query(http: httpx.Client) -> None:
    assert_error(
        http.get("/assistants", params={"limit": "many"}),
        400,
        "Invalid type for 'limit': expected an integer, but got a string instead.",
        "limit",
        "invalid_type",
    )
    assert_error(
        http.get("/assistants", params={"order": "up"}),
        400,
        "Invalid value: 'up'. Supported values are: 'asc' or 'desc'.",
        "order",
        "invalid_value",
    )


def test_enum_and_missing_values(http: httpx.Client, thread_id: str) -> None:
    url = f"/threads/{thread_id}/messages"
    assert_error(
        http.post(url, json={"role": "system", "content": "x"}),
        400,
        "Invalid value: 'system'. Supported values are: 'user' or 'assistant'.",
        "role",
        "invalid_value",
    )
    assert_error(
        http.post(url, json={"role": "user"}),
        400,
        "Missing required parameter: 'content'.",
        "content",
        "missing_required_parameter",
    )
    assert_error(
        http.post("/assistants", json={"name": "no model"}),
        400,
        "Missing required parameter: 'model'.",
        "model",
        "missing_required_parameter",
    )
    assert_error(
        http.post(url, json={"role": "user", "content": []}),
        400,
        "Invalid 'content': empty array. Expected an array with minimum length 1, but got an empty array instead.",
        "content",
        "empty_array",
    )
    assert_error(
        http.post(url, json={"role": "user", "content": [{"type": "video"}]}),
        400,
        "Invalid value for 'content[0].type': expected one of 'image_file', 'image_url', 'text'.",
        "content[0].type",
        "invalid_value",
    )


@pytest.mark.parametrize("path", ["/assistants", "/threads", "/threads/{thread}", "/threads/{thread}/messages"])
def test_invalid_json(http: httpx.Client, thread_id: str, path: str) -> None:
    response = http.post(
        path.format(thread=thread_id), content=b'{"model": "gpt-4o",', headers={"Content-Type": "application/json"}
    )
    assert_error(response, 400, INVALID_JSON)


def test_bodies_that_are_not_json_objects(http: httpx.Client, thread_id: str) -> None:
    json_type = {"Content-Type": "application/json"}
    assert_error(
        http.post("/threads", content=b"[1, 2]", headers=json_type),
        400,
        "Invalid body: expected a JSON object, but got an array instead.",
        code="invalid_type",
    )
    assert_error(
        http.post("/assistants", content=b"null", headers=json_type),
        400,
        "Invalid body: expected a JSON object, but got null instead.",
        code="invalid_type",
    )
    assert_error(http.post(f"/threads/{thread_id}/messages"), 400, INVALID_JSON)
    assert_error(
        http.post(
            "/assistants", content=b"model=gpt-4o", headers={"Content-Type": "application/x-www-form-urlencoded"}
        ),
        400,
        INVALID_JSON,
    )
    assert_error(http.post("/threads", content=b'{"metadata": {"a": "\xff"}}', headers=json_type), 400, INVALID_JSON)
    assert_error(http.post("/threads", content=b"[" * 100_000, headers=json_type), 400, INVALID_JSON)


# ---- limits -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "extra"),
    [
        ("/assistants", {"model": "gpt-4o"}),
        ("/threads", {}),
        ("/threads/{thread}", {}),
        ("/threads/{thread}/messages", {"role": "user", "content": "x"}),
    ],
)
def test_metadata_limits(http: httpx.Client, thread_id: str, path: str, extra: dict[str, Any]) -> None:
    url = path.format(thread=thread_id)
    at_limit = {f"key{i}": "v" for i in range(16)} | {"k" * 64: "v" * 512}
    at_limit.pop("key0")
    accepted = http.post(url, json={**extra, "metadata": at_limit})
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["metadata"] == at_limit

    assert_error(
        http.post(url, json={**extra, "metadata": {f"key{i}": "v" for i in range(17)}}),
        400,
        "Invalid 'metadata': too many properties. Expected an object with at most 16 properties, but got an "
        "object with 17 properties instead.",
        "metadata",
        "object_above_max_properties",
    )
    assert_error(
        http.post(url, json={**extra, "metadata": {"k" * 65: "v"}}),
        400,
        f"Invalid 'metadata': metadata key '{'k' * 65}' is too long. Expected a key with maximum length 64, but "
        "got a key with length 65 instead.",
        "metadata",
        "metadata_key_too_long",
    )
    assert_error(
        http.post(url, json={**extra, "metadata": {"k": "v" * 513}}),
        400,
        "Invalid 'metadata': metadata value for key 'k' is too long. Expected a value with maximum length 512, "
        "but got a value with length 513 instead.",
        "metadata",
        "metadata_value_too_long",
    )


@pytest.mark.parametrize(("field", "limit"), [("name", 256), ("description", 512), ("instructions", 256_000)])
def test_assistant_string_limits(http: httpx.Client, assistant_id: str, field: str, limit: int) -> None:
    accepted = http.post("/assistants", json={"model": "gpt-4o", field: "a" * limit})
    assert accepted.status_code == 200 and accepted.json()[field] == "a" * limit
    expected = (
        f"Invalid '{field}': string too long. Expected a string with maximum length {limit}, but got a string "
        f"with length {limit + 1} instead."
    )
    for url, body in (
        ("/assistants", {"model": "gpt-4o", field: "a" * (limit + 1)}),
        (f"/assistants/{assistant_id}", {field: "a" * (limit + 1)}),
    ):
        assert_error(http.post(url, json=body), 400, expected, field, "string_above_max_length")


def test_at_most_128_tools(http: httpx.Client) -> None:
    tools = [function_tool(f"tool_{i}") for i in range(128)]
    accepted = http.post("/assistants", json={"model": "gpt-4o", "tools": tools})
    assert accepted.status_code == 200 and len(accepted.json()["tools"]) == 128
    assert_error(
        http.post("/assistants", json={"model": "gpt-4o", "tools": [*tools, {"type": "code_interpreter"}]}),
        400,
        "Invalid 'tools': array too long. Expected an array with maximum length 128, but got an array with length "
        "129 instead.",
        "tools",
        "array_above_max_length",
    )


@pytest.mark.parametrize("name", ["has space", "dots.not.allowed", "x" * 65, "", "ünïcode"])
def test_function_name_pattern_refused(http: httpx.Client, name: str) -> None:
    assert_error(
        http.post(
            "/assistants", json={"model": "gpt-4o", "tools": [{"type": "code_interpreter"}, function_tool(name)]}
        ),
        400,
        "Invalid 'tools[1].function.name': string does not match pattern. Expected a string that matches the "
        "pattern '^[a-zA-Z0-9_-]{1,64}$'.",
        "tools[1].function.name",
        "invalid_value",
    )


def test_function_name_pattern_accepted(http: httpx.Client) -> None:
    names = ["a", "Get-Weather_2", "x" * 64]
    response = http.post("/assistants", json={"model": "gpt-4o", "tools": [function_tool(n) for n in names]})
    assert response.status_code == 200, response.text
    assert [tool["function"]["name"] for tool in response.json()["tools"]] == names


@pytest.mark.parametrize("path", ["/assistants", "/threads/{thread}/messages"])
def test_list_limit_is_1_to_100(http: httpx.Client, thread_id: str, path: str) -> None:
    url = path.format(thread=thread_id)
    for good in (1, 100):
        assert http.get(url, params={"limit": good}).status_code == 200
    assert_error(
        http.get(url, params={"limit": 0}),
        400,
        "Invalid 'limit': integer below minimum value. Expected a value >= 1, but got 0 instead.",
        "limit",
        "integer_below_min_value",
    )
    assert_error(
        http.get(url, params={"limit": 101}),
        400,
        "Invalid 'limit': integer above maximum value. Expected a value <= 100, but got 101 instead.",
        "limit",
        "integer_above_max_value",
    )


@pytest.mark.parametrize(("path", "extra"), [("/assistants", {"model": "gpt-4o"}), ("/threads", {})])
def test_code_interpreter_takes_at_most_20_files(http: httpx.Client, path: str, extra: dict[str, Any]) -> None:
    file_ids = [f"file-{i:024d}" for i in range(21)]
    assert_error(
        http.post(path, json={**extra, "tool_resources": {"code_interpreter": {"file_ids": file_ids}}}),
        400,
        "Invalid 'tool_resources.code_interpreter.file_ids': array too long. Expected an array with maximum length "
        "20, but got an array with length 21 instead.",
        "tool_resources.code_interpreter.file_ids",
        "array_above_max_length",
    )


def test_twenty_real_files_are_accepted(client: OpenAI) -> None:
    file_ids = [client.files.create(file=(f"{i}.txt", b"x"), purpose="assistants").id for i in range(20)]
    assistant = client.beta.assistants.create(
        model="gpt-4o", tool_resources={"code_interpreter": {"file_ids": file_ids}}
    )
    assert assistant.tool_resources is not None and assistant.tool_resources.code_interpreter is not None
    assert assistant.tool_resources.code_interpreter.file_ids == file_ids


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        (
            "/assistants",
            {"model": "gpt-4o", "tool_resources": {"code_interpreter": {"file_ids": ["file-unknown"]}}},
            "tool_resources.code_interpreter.file_ids",
        ),
        (
            "/threads",
            {"tool_resources": {"code_interpreter": {"file_ids": ["file-unknown"]}}},
            "tool_resources.code_interpreter.file_ids",
        ),
        (
            "/threads/{thread}/messages",
            {"role": "user", "content": "x", "attachments": [{"file_id": "file-unknown", "tools": []}]},
            "attachments",
        ),
        (
            "/threads/{thread}/messages",
            {"role": "user", "content": [{"type": "image_file", "image_file": {"file_id": "file-unknown"}}]},
            "content",
        ),
    ],
)
def test_unknown_file_ids(http: httpx.Client, thread_id: str, path: str, body: dict[str, Any], param: str) -> None:
    assert_error(
        http.post(path.format(thread=thread_id), json=body),
        400,
        f"Invalid '{param}': no file found with id 'file-unknown'.",
        param,
    )


def test_out_of_range_numbers(http: httpx.Client) -> None:
    assert_error(
        http.post("/assistants", json={"model": "gpt-4o", "temperature": 2.5}),
        400,
        "Invalid 'temperature': decimal above maximum value. Expected a value <= 2.0, but got 2.5 instead.",
        "temperature",
        "decimal_above_max_value",
    )
    assert_error(
        http.post("/assistants", json={"model": "gpt-4o", "top_p": -0.1}),
        400,
        "Invalid 'top_p': decimal below minimum value. Expected a value >= 0.0, but got -0.1 instead.",
        "top_p",
        "decimal_below_min_value",
    )


# ---- 404s ---------------------------------------------------------------------------------------------------


def test_not_found_texts(http: httpx.Client, thread_id: str) -> None:
    cases = [
        ("GET", "/assistants/asst_nope", "No assistant found with id 'asst_nope'."),
        ("POST", "/assistants/asst_nope", "No assistant found with id 'asst_nope'."),
        ("DELETE", "/assistants/asst_nope", "No assistant found with id 'asst_nope'."),
        ("GET", "/threads/thread_nope", "No thread found with id 'thread_nope'."),
        ("POST", "/threads/thread_nope", "No thread found with id 'thread_nope'."),
        ("DELETE", "/threads/thread_nope", "No thread found with id 'thread_nope'."),
        ("GET", "/threads/thread_nope/messages", "No thread found with id 'thread_nope'."),
        ("GET", f"/threads/{thread_id}/messages/msg_nope", "No message found with id 'msg_nope'."),
        ("POST", f"/threads/{thread_id}/messages/msg_nope", "No message found with id 'msg_nope'."),
        ("DELETE", f"/threads/{thread_id}/messages/msg_nope", "No message found with id 'msg_nope'."),
        ("GET", "/files/file-nope", "No such File object: file-nope"),
        ("GET", "/files/file-nope/content", "No such File object: file-nope"),
        ("DELETE", "/files/file-nope", "No such File object: file-nope"),
    ]
    for method, path, message in cases:
        assert_error(http.request(method, path, json={} if method == "POST" else None), 404, message)
    assert_error(http.get("/models/gpt-nope"), 404, "The model 'gpt-nope' does not exist", "model", "model_not_found")


def test_unknown_route_and_method(http: httpx.Client, server: Any) -> None:
    assert_error(http.get("/nothing-here"), 404, "Invalid URL (GET /v1/nothing-here)")
    assert_error(
        http.post("/threads/thread_x/unknown", json={}), 404, "Invalid URL (POST /v1/threads/thread_x/unknown)"
    )
    assert_error(httpx.get(f"{server.root_url}/v2/threads"), 404, "Invalid URL (GET /v2/threads)")
    assert_error(http.put("/threads", json={}), 400, "Invalid method for URL (PUT /v1/threads)")


def test_no_422_or_detail_ever_reaches_a_client(http: httpx.Client, thread_id: str) -> None:
    """A sweep of malformed requests over every resource: each one answers the envelope."""
    bad_requests: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/assistants", {"json": {}}),
        ("POST", "/assistants", {"json": {"model": None}}),
        ("POST", "/assistants", {"json": {"model": "gpt-4o", "tools": [{"type": "browser"}]}}),
        ("POST", "/assistants", {"json": {"model": "gpt-4o", "tools": [{"type": "function"}]}}),
        ("POST", "/assistants", {"json": {"model": "gpt-4o", "response_format": {"type": "xml"}}}),
        ("POST", "/assistants", {"json": {"model": "gpt-4o", "response_format": ["auto"]}}),
        ("POST", "/threads", {"json": {"messages": [{"role": "user", "content": {"type": "text"}}]}}),
        ("POST", "/assistants", {"json": {"model": "gpt-4o", "reasoning_effort": "extreme"}}),
        ("POST", "/assistants", {"json": {"model": "gpt-4o", "top_p": [1]}}),
        ("POST", "/assistants", {"json": {"model": "gpt-4o", "tool_resources": {"code_interpreter": 1}}}),
        ("GET", "/assistants", {"params": {"limit": "1.5"}}),
        ("GET", "/assistants", {"params": {"limit": ""}}),
        ("GET", "/assistants", {"params": {"after": "asst_nope"}}),
        ("POST", "/threads", {"json": {"messages": [{}]}}),
        ("POST", "/threads", {"json": {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}}),
        ("POST", "/threads", {"json": {"tool_resources": []}}),
        ("POST", f"/threads/{thread_id}", {"json": {"metadata": {"a": None}}}),
        ("POST", f"/threads/{thread_id}/messages", {"json": {"role": "user", "content": "x", "attachments": "f"}}),
        ("POST", f"/threads/{thread_id}/messages", {"json": {"role": "user", "content": [{"type": "text"}]}}),
        ("GET", f"/threads/{thread_id}/messages", {"params": {"order": "random"}}),
        ("GET", f"/threads/{thread_id}/messages", {"params": {"before": "msg_nope"}}),
        ("GET", "/files", {"params": {"limit": "x"}}),
        ("POST", "/files", {"content": b"not multipart"}),
        (
            "POST",
            "/files",
            {"files": {"file": ("a", b"a")}, "data": {"purpose": "assistants", "expires_after[anchor]": "x"}},
        ),
    ]
    for method, path, kwargs in bad_requests:
        response = http.request(method, path, **kwargs)
        assert response.status_code != 200, (method, path, kwargs, response.text)
        error = assert_envelope(response)
        assert response.status_code == 400, (method, path, kwargs, response.text)
        assert error["type"] == "invalid_request_error"
        assert "''" not in error["message"], f"an empty parameter name leaked: {error}"
        assert not PYDANTIC_LABEL.search(f"{error['message']} {error['param']}"), f"a pydantic label leaked: {error}"


def test_union_members_do_not_leak_into_the_parameter(http: httpx.Client) -> None:
    assert_error(
        http.post("/assistants", json={"model": "gpt-4o", "response_format": {"type": "xml"}}),
        400,
        "Invalid value for 'response_format.type': expected one of 'text', 'json_object', 'json_schema'.",
        "response_format.type",
        "invalid_value",
    )
    assert_error(
        http.post("/assistants", json={"model": "gpt-4o", "response_format": {"type": "json_schema"}}),
        400,
        "Missing required parameter: 'response_format.json_schema'.",
        "response_format.json_schema",
        "missing_required_parameter",
    )
    assert_error(
        http.post("/assistants", json={"model": "gpt-4o", "response_format": 5}),
        400,
        "Invalid type for 'response_format': expected a string, but got an integer instead.",
        "response_format",
        "invalid_type",
    )
