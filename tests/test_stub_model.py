"""The stub model's documented rules (emulator/stub_model.py), one by one, on hand-built requests."""

from __future__ import annotations

import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from emulator.stub_model import (
    FunctionCall,
    ModelRequest,
    ModelTurn,
    PromptMessage,
    StubModel,
    ToolResult,
    asks_for,
    trigger_words,
)

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
            },
            "required": ["city"],
        },
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]},
    },
}
NEWS = {"type": "function", "function": {"name": "latest-news"}}
TOOLS = (WEATHER, TIME, NEWS)


def request(text: str = "Hello", **fields: Any) -> ModelRequest:
    messages = (PromptMessage("user", "an older question"), PromptMessage("assistant", "an answer"))
    return ModelRequest("gpt-4o", "Be brief.", (*messages, PromptMessage("user", text)), **fields)


def respond(text: str = "Hello", **fields: Any) -> ModelTurn:
    return StubModel().respond(request(text, **fields))


def names(turn: ModelTurn) -> list[str]:
    assert turn.text is None and turn.error is None
    return [call.name for call in turn.function_calls]


def test_a_text_answer_echoes_the_last_user_message() -> None:
    assert respond("What is up?") == ModelTurn(text="You said: What is up?")
    assert respond("What is up?", tools=TOOLS).text == "You said: What is up?", "auto, no function named: text"
    only_assistant = ModelRequest(model="m", instructions="", messages=(PromptMessage("assistant", "hi"),))
    assert StubModel().respond(only_assistant).text == "You said: "


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("What's get_weather say?", ["get_weather"]),
        ("please GET WEATHER for me", ["get_weather"]),
        ("call get_time and get_weather", ["get_weather", "get_time"]),
        ("latest news please", ["latest-news"]),
        ("the weatherman gets the timetable", []),
        ("What's the weather like in Paris today?", ["get_weather"]),
        ("What TIME is it, and any news?", ["get_time", "latest-news"]),
    ],
)
def test_auto_calls_the_functions_the_last_user_message_names(text: str, expected: list[str]) -> None:
    turn = respond(text, tools=TOOLS, tool_choice="auto")
    if expected:
        assert names(turn) == expected, "in the order of the tools"
    else:
        assert turn.text == f"You said: {text}"


@pytest.mark.parametrize(
    ("name", "text", "asked"),
    [
        ("get_weather", "What's the weather like in Paris today?", True),
        ("get_weather", "WEATHER?!", True),
        ("get_weather", "Weathers, please.", True),
        ("get_weather", "(weather)", True),
        ("get_weather", "forget_weather", True),
        ("get_weather", "the weatherman", False),
        ("get_weather", "get the forecast", False),
        ("get_weather", "Can you get it?", False),
        ("get_weather", "get_weather", True),
        ("get_weather", "Get Weather", True),
        ("getWeather", "how is the weather?", True),
        ("getWeather", "call getWeather", True),
        ("getWeather", "get whether", False),
        ("get-stock-price", "ACME stock prices", True),
        ("get-stock-price", "What's the PRICE?", True),
        ("get-stock-price", "Stocks.", True),
        ("get-stock-price", "get the pricey stockings", False),
        ("lookupOrders", "any orders today?", True),
        ("lookupOrders", "one order", True),
        ("lookupOrders", "a lookup", True),
        ("lookupOrders", "look up my orders", True),
        ("lookupOrders", "look up my ordering", False),
        ("lookup_orders", "LOOKUPS", True),
        ("getHTTPStatus", "the status of http", True),
        ("get_id", "get the id", False),
        ("get_id", "use get_id", True),
        ("get_id", "use get id", True),
        ("set_the_tab", "the tab", False),
        ("get_2024_report", "2024", False),
        ("get_2024_report", "the reports", True),
        ("latest-news", "what's new?", True),
        ("what_is_new", "What is it?", True),
        ("what_is_new", "Is it new?", False),
    ],
)
def test_a_message_asks_for_a_function_by_a_word_of_its_name(name: str, text: str, asked: bool) -> None:
    assert asks_for(text, name) is asked


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("get_weather", {"weather"}),
        ("getWeather", {"weather"}),
        ("get-stock-price", {"stock", "price"}),
        ("lookupOrders", {"lookup", "order"}),
        ("getHTTPStatus", {"http", "statu"}),
        ("set_the_tab", set()),
        ("get_2024_report", {"report"}),
    ],
)
def test_the_trigger_words_of_a_name(name: str, words: set[str]) -> None:
    assert trigger_words(name) == words


def test_only_words_of_four_or_more_letters_trigger() -> None:
    short = ("get_the_map", "do-it", "setABC")
    tools = tuple({"type": "function", "function": {"name": name}} for name in (*short, "find-shop"))
    for text in ("Get me the map", "do that, then it", "set ABC", "GET A MAP. DO THE SET. IT IS ABC!"):
        assert respond(text, tools=tools, tool_choice="auto").text == f"You said: {text}"
    assert names(respond("get_the_map", tools=tools, tool_choice="auto")) == ["get_the_map"], "the exact name"
    assert names(respond("Get me the map of a shop", tools=tools, tool_choice="auto")) == ["find-shop"]


def test_only_the_last_user_message_counts() -> None:
    req = ModelRequest(
        model="m",
        instructions="",
        messages=(PromptMessage("user", "get_weather"), PromptMessage("user", "thanks")),
        tools=TOOLS,
    )
    assert StubModel().respond(req).text == "You said: thanks"


def test_none_never_calls_a_function() -> None:
    assert respond("get_weather now", tools=TOOLS, tool_choice="none").text == "You said: get_weather now"


def test_required_calls_the_named_functions_or_every_function() -> None:
    assert names(respond("get_time please", tools=TOOLS, tool_choice="required")) == ["get_time"]
    assert names(respond("What time is it?", tools=TOOLS, tool_choice="required")) == ["get_time"], "a word"
    assert names(respond("weather and news", tools=TOOLS, tool_choice="required")) == ["get_weather", "latest-news"]
    assert names(respond("anything", tools=TOOLS, tool_choice="required")) == ["get_weather", "get_time", "latest-news"]


def test_parallel_false_makes_exactly_one_call() -> None:
    assert names(respond("anything", tools=TOOLS, tool_choice="required", parallel_tool_calls=False)) == ["get_weather"]
    both = "get_time and get_weather"
    assert names(respond(both, tools=TOOLS, tool_choice="auto", parallel_tool_calls=False)) == ["get_weather"]


def test_a_named_function_is_the_one_call() -> None:
    choice = {"type": "function", "function": {"name": "get_time"}}
    assert names(respond("get_weather!", tools=TOOLS, tool_choice=choice)) == ["get_time"]
    assert names(respond("x", tools=TOOLS, tool_choice=choice, parallel_tool_calls=False)) == ["get_time"]


def test_a_named_builtin_tool_or_no_function_tools_gives_text() -> None:
    assert respond("get_weather", tools=TOOLS, tool_choice={"type": "file_search"}).text == "You said: get_weather"
    assert respond("hi", tools=({"type": "code_interpreter"},), tool_choice="required").text == "You said: hi"
    assert respond("hi", tool_choice="required").text == "You said: hi"


def test_arguments_are_valid_instances_of_each_schema() -> None:
    turn = respond("anything", tools=TOOLS, tool_choice="required")
    for call, tool in zip(turn.function_calls, TOOLS, strict=True):
        schema = tool["function"].get("parameters") or {"type": "object"}
        arguments = json.loads(call.arguments)
        Draft202012Validator(schema).validate(arguments)
    assert turn.function_calls[0] == FunctionCall("get_weather", '{"city":"example city"}'), "required only, compact"
    assert turn.function_calls[2] == FunctionCall("latest-news", "{}")


def test_strict_functions_fill_every_property() -> None:
    strict = {"type": "function", "function": {**WEATHER["function"], "strict": True}}
    (call,) = respond("get_weather", tools=(strict,)).function_calls
    assert json.loads(call.arguments) == {"city": "example city", "unit": "celsius", "days": 1}


def test_tool_results_give_a_text_that_quotes_every_output() -> None:
    results = (
        ToolResult("call_1", "get_weather", '{"city":"Paris"}', "22C and sunny"),
        ToolResult("call_2", "get_time", '{"tz":"CET"}', "10:00"),
    )
    turn = respond("get_weather", tools=TOOLS, tool_choice="required", tool_results=results)
    assert turn.text == "Based on the tool results: get_weather returned 22C and sunny; get_time returned 10:00."


def test_json_object_format_is_valid_json() -> None:
    turn = respond('Hi "there"\n', response_format={"type": "json_object"})
    assert json.loads(turn.text or "") == {"answer": 'You said: Hi "there"\n'}
    unicode = respond("Café ☕", response_format={"type": "json_object"})
    assert unicode.text == '{"answer": "You said: Café ☕"}', "characters as themselves, not \\u escapes"
    parameters = {"type": "object", "properties": {"drink": {"enum": ["café crème"]}}, "required": ["drink"]}
    enum = {"type": "function", "function": {"name": "order", "parameters": parameters}}
    assert respond("order", tools=(enum,)).function_calls[0].arguments == '{"drink":"café crème"}'


SCHEMA = {
    "type": "object",
    "properties": {
        "summary": {"type": "string"},
        "mood": {"type": "string", "enum": ["happy", "sad"]},
        "score": {"type": "number", "minimum": 0, "maximum": 0.5},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
    },
    "required": ["summary", "mood"],
    "additionalProperties": False,
}


@pytest.mark.parametrize("strict", [False, True])
def test_json_schema_format_is_a_valid_instance(strict: bool) -> None:
    response_format = {"type": "json_schema", "json_schema": {"name": "reply", "schema": SCHEMA, "strict": strict}}
    value = json.loads(respond("How are you?", response_format=response_format).text or "")
    Draft202012Validator(SCHEMA).validate(value)
    assert value["summary"] == "You said: How are you?", "free text carries the answer"
    assert set(value) == (set(SCHEMA["properties"]) if strict else {"summary", "mood"})


def test_formats_apply_to_the_answer_after_tool_results() -> None:
    results = (ToolResult("call_1", "get_time", "{}", "noon"),)
    turn = respond("x", tool_results=results, response_format={"type": "json_object"})
    assert json.loads(turn.text or "") == {"answer": "Based on the tool results: get_time returned noon."}
    assert respond("x", response_format={"type": "text"}).text == "You said: x"
    assert respond("x", response_format="auto").text == "You said: x"


def test_the_same_request_gives_the_same_turn() -> None:
    fields = {"tools": TOOLS, "tool_choice": "required", "response_format": {"type": "json_object"}}
    assert respond("anything", **fields) == respond("anything", **fields)


def test_a_turn_is_exactly_one_kind() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        ModelTurn()
    with pytest.raises(ValueError, match="exactly one"):
        ModelTurn(text="x", function_calls=(FunctionCall("f", "{}"),))
    assert ModelTurn(error=("server_error", "boom")).error == ("server_error", "boom")
