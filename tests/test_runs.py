"""Runs end to end through the official SDK over real HTTP: the stub's answer, usage, timestamps, the official
schema for every body, list/retrieve/update, steps, per-run overrides, tool_choice, parallel tool calls and their
outputs, function arguments valid against their schemas, response formats, and determinism across tenants.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from openai import BadRequestError, OpenAI
from openai.types.beta.threads import Message, Run
from openai.types.beta.threads.runs import RunStep

from tests.oracle import check_fields, conforms

EXPIRY = 600


def function(name: str, parameters: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, **extra}
    if parameters is not None:
        body["parameters"] = parameters
    return {"type": "function", "function": body}


WEATHER = function(
    "get_weather",
    {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
        "required": ["city", "unit"],
    },
)
TIME = function("get_time", {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]})
STOCK = function(
    "get_stock",
    {"type": "object", "properties": {"ticker": {"type": "string", "minLength": 4}}, "required": ["ticker"]},
)


def setup(client: OpenAI, text: str = "Hello there", **assistant: Any) -> tuple[str, str]:
    """A new assistant ("Be brief." on gpt-4o unless told) and a thread holding one user message."""
    created = client.beta.assistants.create(**{"model": "gpt-4o", "instructions": "Be brief.", **assistant})
    thread = client.beta.threads.create(messages=[{"role": "user", "content": text}])
    return created.id, thread.id


def raw_run(http: httpx.Client, thread_id: str, run_id: str) -> dict[str, Any]:
    response = http.get(f"/threads/{thread_id}/runs/{run_id}")
    assert response.status_code == 200, response.text
    conforms(response.json(), Run, "RunObject")
    return response.json()


def raw_steps(http: httpx.Client, thread_id: str, run_id: str) -> list[dict[str, Any]]:
    page = http.get(f"/threads/{thread_id}/runs/{run_id}/steps", params={"order": "asc"}).json()
    check_fields(page, "ListRunStepsResponse")
    for step in page["data"]:
        conforms(step, RunStep, "RunStepObject")
    return page["data"]


def raw_messages(http: httpx.Client, thread_id: str) -> list[dict[str, Any]]:
    page = http.get(f"/threads/{thread_id}/messages", params={"order": "asc"}).json()
    for message in page["data"]:
        conforms(message, Message, "MessageObject")
    return page["data"]


def text_of(message: dict[str, Any]) -> str:
    return "".join(part["text"]["value"] for part in message["content"] if part["type"] == "text")


def usage_sum(steps: list[dict[str, Any]]) -> dict[str, int]:
    keys = ("prompt_tokens", "completion_tokens", "total_tokens")
    return {key: sum(step["usage"][key] for step in steps) for key in keys}


def refused(call: Any) -> dict[str, Any]:
    with pytest.raises(BadRequestError) as error:
        call()
    assert error.value.status_code == 400
    return error.value.body  # type: ignore[return-value]


def invalid(message: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"message": message, "type": "invalid_request_error", "param": param, "code": code}


def test_create_and_poll_completes_with_the_stub_answer(client: OpenAI, http: httpx.Client) -> None:
    assistant_id, thread_id = setup(client, "Hello there")
    run = client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id)
    assert run.status == "completed"

    body = raw_run(http, thread_id, run.id)
    assert body["id"].startswith("run_") and body["thread_id"] == thread_id and body["assistant_id"] == assistant_id
    assert (body["model"], body["instructions"], body["tools"]) == ("gpt-4o", "Be brief.", [])
    assert body["required_action"] is None and body["last_error"] is None and body["incomplete_details"] is None
    assert body["created_at"] <= body["started_at"] <= body["completed_at"]
    assert (body["expires_at"], body["cancelled_at"], body["failed_at"]) == (None, None, None)
    usage = body["usage"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert usage["prompt_tokens"] + usage["completion_tokens"] == usage["total_tokens"]
    assert body["truncation_strategy"] == {"type": "auto", "last_messages": None}
    assert (body["tool_choice"], body["parallel_tool_calls"], body["response_format"]) == ("auto", True, "auto")

    user, answer = raw_messages(http, thread_id)
    assert text_of(user) == "Hello there" and user["run_id"] is None
    assert text_of(answer) == "You said: Hello there"
    assert (answer["role"], answer["status"]) == ("assistant", "completed")
    assert (answer["run_id"], answer["assistant_id"]) == (run.id, assistant_id)
    assert answer["content"][0]["text"]["annotations"] == []
    assert body["started_at"] <= answer["completed_at"] <= body["completed_at"]

    (step,) = raw_steps(http, thread_id, run.id)
    assert step["id"].startswith("step_") and (step["type"], step["status"]) == ("message_creation", "completed")
    assert step["step_details"] == {"type": "message_creation", "message_creation": {"message_id": answer["id"]}}
    assert (step["run_id"], step["thread_id"], step["assistant_id"]) == (run.id, thread_id, assistant_id)
    assert step["usage"] == usage, "the run's usage is the sum over its steps"
    assert body["created_at"] <= step["created_at"] <= step["completed_at"] <= body["completed_at"]
    assert (step["cancelled_at"], step["failed_at"], step["expired_at"], step["last_error"]) == (None,) * 4


def test_a_created_run_is_queued_then_done_by_the_next_retrieve(client: OpenAI, http: httpx.Client) -> None:
    assistant_id, thread_id = setup(client)
    created = http.post(f"/threads/{thread_id}/runs", json={"assistant_id": assistant_id})
    assert created.status_code == 200 and created.headers["content-type"] == "application/json"
    assert int(created.headers["openai-poll-after-ms"]) > 0
    body = conforms(created.json(), Run, "RunObject")
    assert body.status == "queued" and body.usage is None and body.started_at is None
    assert body.expires_at == body.created_at + EXPIRY, "expires_at = created_at + 10 minutes while active"

    retrieved = client.beta.threads.runs.with_raw_response.retrieve(body.id, thread_id=thread_id)
    assert int(retrieved.headers["openai-poll-after-ms"]) > 0
    run = retrieved.parse()
    assert run.status == "completed" and run.expires_at is None and run.started_at is not None
    updated = client.beta.threads.runs.with_raw_response.update(body.id, thread_id=thread_id, metadata={"a": "b"})
    assert int(updated.headers["openai-poll-after-ms"]) > 0 and updated.parse().metadata == {"a": "b"}


def test_list_retrieve_and_update_runs_and_steps(client: OpenAI, http: httpx.Client) -> None:
    assistant_id, thread_id = setup(client)
    runs = client.beta.threads.runs
    first = runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id, metadata={"n": "1"})
    second = runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id)
    assert [run.id for run in runs.list(thread_id)] == [second.id, first.id], "newest first"
    assert [run.id for run in runs.list(thread_id, order="asc", limit=1)] == [first.id, second.id], "auto-paging"
    page = http.get(f"/threads/{thread_id}/runs", params={"limit": 1}).json()
    check_fields(page, "ListRunsResponse")
    assert (page["first_id"], page["last_id"], page["has_more"]) == (second.id, second.id, True)
    for item in page["data"]:
        conforms(item, Run, "RunObject")

    assert runs.retrieve(first.id, thread_id=thread_id).metadata == {"n": "1"}
    updated = runs.update(first.id, thread_id=thread_id, metadata={"n": "2", "team": "qa"})
    assert updated.metadata == {"n": "2", "team": "qa"} and updated.status == "completed"
    assert runs.retrieve(first.id, thread_id=thread_id).metadata == {"n": "2", "team": "qa"}
    assert runs.retrieve(second.id, thread_id=thread_id).metadata == {}

    (step,) = runs.steps.list(first.id, thread_id=thread_id)
    again = runs.steps.retrieve(step.id, thread_id=thread_id, run_id=first.id)
    assert again == step and again.run_id == first.id
    raw = http.get(f"/threads/{thread_id}/runs/{first.id}/steps/{step.id}").json()
    conforms(raw, RunStep, "RunStepObject")
    missing = http.get(f"/threads/{thread_id}/runs/{second.id}/steps/{step.id}")
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == f"No run step found with id '{step.id}'."


def test_additional_instructions_and_additional_messages(client: OpenAI, http: httpx.Client) -> None:
    assistant_id, thread_id = setup(client, "first question")
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread_id,
        assistant_id=assistant_id,
        additional_instructions="Answer in French.",
        additional_messages=[
            {"role": "assistant", "content": "an earlier answer"},
            {"role": "user", "content": "the follow-up", "metadata": {"k": "v"}},
        ],
    )
    assert run.status == "completed"
    assert run.instructions == "Be brief.\nAnswer in French."
    messages = raw_messages(http, thread_id)
    assert [(m["role"], text_of(m)) for m in messages] == [
        ("user", "first question"),
        ("assistant", "an earlier answer"),
        ("user", "the follow-up"),
        ("assistant", "You said: the follow-up"),
    ]
    assert messages[2]["metadata"] == {"k": "v"} and messages[3]["run_id"] == run.id


def test_instructions_model_and_tools_overrides(client: OpenAI, http: httpx.Client) -> None:
    assistant_id, thread_id = setup(client, tools=[WEATHER])
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread_id,
        assistant_id=assistant_id,
        instructions="Speak like a pirate.",
        model="gpt-4o-mini",
        tools=[TIME],
        temperature=0.2,
        top_p=0.5,
        metadata={"x": "y"},
    )
    assert (run.status, run.instructions, run.model) == ("completed", "Speak like a pirate.", "gpt-4o-mini")
    assert [tool.model_dump(exclude_none=True) for tool in run.tools] == [TIME]
    assert (run.temperature, run.top_p, run.metadata) == (0.2, 0.5, {"x": "y"})
    assistant = client.beta.assistants.retrieve(assistant_id)
    assert assistant.instructions == "Be brief." and assistant.model == "gpt-4o", "the assistant is unchanged"

    tools = [function(f"f{i}") for i in range(21)]
    body = refused(lambda: client.beta.threads.runs.create(thread_id=thread_id, assistant_id=assistant_id, tools=tools))
    assert body == invalid(
        "Invalid 'tools': array too long. Expected an array with maximum length 20, but got an array with length 21 "
        "instead.",
        "tools",
        "array_above_max_length",
    )
    twenty = client.beta.threads.runs.create_and_poll(
        thread_id=thread_id, assistant_id=assistant_id, tools=tools[:20], tool_choice="none"
    )
    assert twenty.status == "completed" and len(twenty.tools) == 20
    overridden = client.beta.threads.runs.create_and_poll(
        thread_id=thread_id, assistant_id=assistant_id, tools=[TIME], tool_choice="required"
    )
    calls = overridden.required_action.submit_tool_outputs.tool_calls  # type: ignore[union-attr]
    assert [call.function.name for call in calls] == ["get_time"], "the model sees the override, not the assistant's"


def test_tool_choice_none_required_and_named(client: OpenAI, http: httpx.Client) -> None:
    runs = client.beta.threads.runs
    assistant_id, thread_id = setup(client, "what does get_weather say?", tools=[WEATHER, TIME])
    none = runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id, tool_choice="none")
    assert none.status == "completed" and none.tool_choice == "none"
    assert text_of(raw_messages(http, thread_id)[-1]) == "You said: what does get_weather say?"

    auto = runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id)
    assert auto.status == "requires_action" and auto.required_action is not None
    assert [call.function.name for call in auto.required_action.submit_tool_outputs.tool_calls] == ["get_weather"]
    runs.cancel(auto.id, thread_id=thread_id)
    assert runs.retrieve(auto.id, thread_id=thread_id).status == "cancelled"

    _, plain_thread = setup(client, "no function named here")
    required = runs.create_and_poll(thread_id=plain_thread, assistant_id=assistant_id, tool_choice="required")
    assert required.status == "requires_action" and required.tool_choice == "required"
    names = [call.function.name for call in required.required_action.submit_tool_outputs.tool_calls]  # type: ignore[union-attr]
    assert names == ["get_weather", "get_time"], "required and nothing named: every function"
    runs.cancel(required.id, thread_id=plain_thread)

    named = {"type": "function", "function": {"name": "get_time"}}
    chosen = runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id, tool_choice=named)  # type: ignore[arg-type]
    assert chosen.status == "requires_action"
    assert chosen.tool_choice.model_dump(exclude_none=True) == named  # type: ignore[union-attr]
    calls = chosen.required_action.submit_tool_outputs.tool_calls  # type: ignore[union-attr]
    assert [call.function.name for call in calls] == ["get_time"], "the named function, though another is mentioned"
    runs.cancel(chosen.id, thread_id=thread_id)
    runs.retrieve(chosen.id, thread_id=thread_id)

    stranger = {"type": "function", "function": {"name": "get_stock"}}
    body = refused(lambda: runs.create(thread_id=thread_id, assistant_id=assistant_id, tool_choice=stranger))  # type: ignore[arg-type]
    assert body == invalid(
        "Invalid 'tool_choice': the function 'get_stock' is not one of the run's tools.", "tool_choice", "invalid_value"
    )


def test_parallel_tool_calls_in_one_step_and_their_outputs(client: OpenAI, http: httpx.Client) -> None:
    runs = client.beta.threads.runs
    assistant_id, thread_id = setup(client, "call them all", tools=[WEATHER, TIME, STOCK])
    run = runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id, tool_choice="required")
    assert run.status == "requires_action" and run.expires_at == run.created_at + EXPIRY and run.usage is None
    action = raw_run(http, thread_id, run.id)["required_action"]
    assert action["type"] == "submit_tool_outputs"
    calls = action["submit_tool_outputs"]["tool_calls"]
    assert [call["function"]["name"] for call in calls] == ["get_weather", "get_time", "get_stock"]
    assert all(call["id"].startswith("call_") and call["type"] == "function" for call in calls)
    assert len({call["id"] for call in calls}) == 3

    (step,) = raw_steps(http, thread_id, run.id)
    assert (step["type"], step["status"], step["usage"]) == ("tool_calls", "in_progress", None)
    in_step = [
        (c["id"], c["function"]["arguments"], c["function"]["output"]) for c in step["step_details"]["tool_calls"]
    ]
    assert in_step == [(c["id"], c["function"]["arguments"], None) for c in calls]
    assert text_of(raw_messages(http, thread_id)[-1]) == "call them all", "no assistant message yet"

    outputs = {"get_weather": "22C and sunny", "get_time": "10:00 CET", "get_stock": "ACME at 12.5"}
    done = runs.submit_tool_outputs_and_poll(
        run_id=run.id,
        thread_id=thread_id,
        tool_outputs=[{"tool_call_id": call["id"], "output": outputs[call["function"]["name"]]} for call in calls],
    )
    assert done.id == run.id and done.status == "completed" and done.required_action is None
    answer = raw_messages(http, thread_id)[-1]
    assert text_of(answer) == (
        "Based on the tool results: get_weather returned 22C and sunny; get_time returned 10:00 CET; "
        "get_stock returned ACME at 12.5."
    )
    tool_step, message_step = raw_steps(http, thread_id, run.id)
    assert tool_step["id"] == step["id"] and tool_step["status"] == "completed"
    assert [c["function"]["output"] for c in tool_step["step_details"]["tool_calls"]] == list(outputs.values())
    assert message_step["step_details"]["message_creation"]["message_id"] == answer["id"]
    assert tool_step["completed_at"] <= message_step["created_at"]
    assert raw_run(http, thread_id, run.id)["usage"] == usage_sum([tool_step, message_step])
    assert message_step["usage"]["prompt_tokens"] > tool_step["usage"]["prompt_tokens"], "outputs are in the prompt"


def test_partial_unknown_and_late_tool_outputs_are_refused(client: OpenAI, http: httpx.Client) -> None:
    runs = client.beta.threads.runs
    assistant_id, thread_id = setup(client, "both please", tools=[WEATHER, TIME])
    run = runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id, tool_choice="required")
    first, second = run.required_action.submit_tool_outputs.tool_calls  # type: ignore[union-attr]

    def submit(outputs: list[dict[str, str]]) -> dict[str, Any]:
        return refused(lambda: runs.submit_tool_outputs(run.id, thread_id=thread_id, tool_outputs=outputs))  # type: ignore[arg-type]

    partial = submit([{"tool_call_id": first.id, "output": "x"}])
    assert partial == invalid(
        f"Expected tool outputs for call_ids ['{first.id}', '{second.id}'], got ['{first.id}']: "
        f"missing ['{second.id}'].",
        "tool_outputs",
    )
    unknown = submit([{"tool_call_id": first.id, "output": "x"}, {"tool_call_id": "call_nope", "output": "y"}])
    assert unknown == invalid("No tool call found with id 'call_nope'.", "tool_outputs[1].tool_call_id")
    twice = submit([{"tool_call_id": first.id, "output": "x"}, {"tool_call_id": first.id, "output": "y"}])
    assert twice["message"] == f"Duplicate tool output for tool call '{first.id}'."
    assert runs.retrieve(run.id, thread_id=thread_id).status == "requires_action", "refusals change nothing"

    outputs = [{"tool_call_id": first.id, "output": "a"}, {"tool_call_id": second.id, "output": "b"}]
    assert runs.submit_tool_outputs_and_poll(run_id=run.id, thread_id=thread_id, tool_outputs=outputs).status == (
        "completed"
    )
    late = submit(outputs)
    assert late == invalid('Runs in status "completed" do not accept tool outputs.')


def test_parallel_tool_calls_false_makes_exactly_one_call(client: OpenAI) -> None:
    assistant_id, thread_id = setup(client, "get_time and get_weather", tools=[WEATHER, TIME])
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread_id, assistant_id=assistant_id, tool_choice="required", parallel_tool_calls=False
    )
    assert run.parallel_tool_calls is False
    (call,) = run.required_action.submit_tool_outputs.tool_calls  # type: ignore[union-attr]
    assert call.function.name == "get_weather"


NESTED = {
    "type": "object",
    "properties": {
        "order": {
            "type": "object",
            "properties": {
                "id": {"type": "string", "format": "uuid"},
                "priority": {"type": "string", "enum": ["low", "high"]},
                "lines": {
                    "type": "array",
                    "minItems": 2,
                    "items": {
                        "type": "object",
                        "properties": {
                            "sku": {"type": "string", "minLength": 6},
                            "qty": {"type": "integer", "minimum": 3, "maximum": 9},
                            "discount": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
                        },
                        "required": ["sku", "qty", "discount"],
                        "additionalProperties": False,
                    },
                },
            },
            "required": ["id", "priority", "lines"],
        },
        "note": {"type": ["string", "null"]},
    },
    "required": ["order"],
}
STRICT = {
    "type": "object",
    "properties": {
        "location": {"type": "string"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "when": {
            "type": "object",
            "properties": {"day": {"type": "integer", "minimum": 1}},
            "required": ["day"],
            "additionalProperties": False,
        },
    },
    "required": ["location", "unit", "when"],
    "additionalProperties": False,
}


def test_function_arguments_are_valid_against_each_schema(client: OpenAI) -> None:
    tools = [
        function("place_order", NESTED, description="Place an order"),
        function("forecast", STRICT, strict=True),
        function("ping"),
        function("loose", {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "boolean"}}}),
    ]
    assistant_id, thread_id = setup(client, "go", tools=tools)
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread_id, assistant_id=assistant_id, tool_choice="required"
    )
    calls = {
        call.function.name: json.loads(call.function.arguments)
        for call in run.required_action.submit_tool_outputs.tool_calls
    }  # type: ignore[union-attr]
    assert list(calls) == ["place_order", "forecast", "ping", "loose"]
    checker = Draft202012Validator.FORMAT_CHECKER
    for tool in tools:
        schema = tool["function"].get("parameters", {"type": "object"})
        Draft202012Validator(schema, format_checker=checker).validate(calls[tool["function"]["name"]])
    assert len(calls["place_order"]["order"]["lines"]) == 2, "minItems"
    assert calls["place_order"]["order"]["priority"] == "low", "an enum value"
    assert calls["forecast"] == {"location": "example location", "unit": "celsius", "when": {"day": 1}}
    assert calls["ping"] == {} and calls["loose"] == {}, "non-strict: the required properties only"


def test_response_formats_json_object_and_json_schema(client: OpenAI, http: httpx.Client) -> None:
    assistant_id, thread_id = setup(client, "Summarize me")
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread_id, assistant_id=assistant_id, response_format={"type": "json_object"}
    )
    assert run.status == "completed" and run.response_format.type == "json_object"  # type: ignore[union-attr]
    assert json.loads(text_of(raw_messages(http, thread_id)[-1])) == {"answer": "You said: Summarize me"}

    schema = {
        "type": "object",
        "properties": {
            "title": {"type": "string", "maxLength": 12},
            "sentiment": {"type": "string", "enum": ["positive", "negative"]},
            "score": {"type": "number", "minimum": 0, "maximum": 0.75},
            "keywords": {"type": "array", "items": {"type": "string"}, "minItems": 3, "uniqueItems": True},
        },
        "required": ["title", "sentiment", "score", "keywords"],
        "additionalProperties": False,
    }
    response_format = {"type": "json_schema", "json_schema": {"name": "summary", "schema": schema, "strict": True}}
    _, second = setup(client, "Summarize me")
    run = client.beta.threads.runs.create_and_poll(
        thread_id=second,
        assistant_id=assistant_id,
        response_format=response_format,  # type: ignore[arg-type]
    )
    assert run.status == "completed"
    assert raw_run(http, second, run.id)["response_format"] == response_format
    value = json.loads(text_of(raw_messages(http, second)[-1]))
    Draft202012Validator(schema).validate(value)
    assert value["title"] == "You said: Su" and value["sentiment"] == "positive"


def run_sequence(client: OpenAI) -> dict[str, Any]:
    """The same requests, whatever the tenant: what they produce, without the ids."""
    assistant_id, thread_id = setup(client, "Tell me about get_weather in Paris", tools=[WEATHER, TIME])
    runs = client.beta.threads.runs
    first = runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id)
    calls = first.required_action.submit_tool_outputs.tool_calls  # type: ignore[union-attr]
    done = runs.submit_tool_outputs_and_poll(
        run_id=first.id, thread_id=thread_id, tool_outputs=[{"tool_call_id": c.id, "output": "sunny"} for c in calls]
    )
    client.beta.threads.messages.create(thread_id, role="user", content="and now?")
    second = runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id, tool_choice="none")
    texts = [m.content[0].text.value for m in client.beta.threads.messages.list(thread_id, order="asc")]  # type: ignore[union-attr]
    steps = [s.usage.model_dump() for r in (done, second) for s in runs.steps.list(r.id, thread_id=thread_id)]  # type: ignore[union-attr]
    return {
        "ids": [assistant_id, thread_id, first.id, *(c.id for c in calls), second.id],
        "texts": texts,
        "calls": [(c.function.name, c.function.arguments) for c in calls],
        "usage": [done.usage.model_dump(), second.usage.model_dump()],  # type: ignore[union-attr]
        "steps": steps,
    }


def test_the_same_requests_on_two_tenants_give_the_same_texts_calls_and_tokens(client: OpenAI, server: Any) -> None:
    other = OpenAI(base_url=server.base_url, api_key=f"sk-test-{uuid.uuid4().hex}", max_retries=0)
    mine, theirs = run_sequence(client), run_sequence(other)
    assert mine["texts"] == theirs["texts"] and len(mine["texts"]) == 4
    assert mine["texts"][1] == "Based on the tool results: get_weather returned sunny."
    assert mine["calls"] == theirs["calls"] == [("get_weather", '{"city":"example city","unit":"c"}')]
    assert mine["usage"] == theirs["usage"] and mine["steps"] == theirs["steps"]
    assert not set(mine["ids"]) & set(theirs["ids"]), "ids differ"


def test_include_accepts_only_the_file_search_content(client: OpenAI, http: httpx.Client) -> None:
    assistant_id, thread_id = setup(client)
    include = "step_details.tool_calls[*].file_search.results[*].content"
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread_id, assistant_id=assistant_id, include=[include], reasoning_effort="low"
    )
    assert run.status == "completed"
    (step,) = client.beta.threads.runs.steps.list(run.id, thread_id=thread_id, include=[include])
    assert (
        client.beta.threads.runs.steps.retrieve(step.id, thread_id=thread_id, run_id=run.id, include=[include]) == step
    )
    for path in (f"/threads/{thread_id}/runs", f"/threads/{thread_id}/runs/{run.id}/steps"):
        method = "POST" if path.endswith("/runs") else "GET"
        body = {"assistant_id": assistant_id} if method == "POST" else None
        response = http.request(method, path, params={"include[]": "step_details.bogus"}, json=body)
        assert (response.status_code, response.json()["error"]) == (
            400,
            invalid(
                f"Invalid value: 'step_details.bogus'. Supported values are: '{include}'.", "include", "invalid_value"
            ),
        )
    assert [r.id for r in client.beta.threads.runs.list(thread_id)] == [run.id], "the refused create made no run"
