"""The stub model picks functions by a word of their name (README "The stub model"), end to end through the SDK:
a realistic question reaches `get_weather` under `tool_choice: "auto"`, and `"required"` calls only the functions
the question asks for."""

from __future__ import annotations

import json
from typing import Any

from openai import OpenAI
from openai.types.beta.threads import Run

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
STOCK = {"type": "function", "function": {"name": "get-stock-price"}}
ORDERS = {"type": "function", "function": {"name": "lookupOrders"}}
TOOLS = [WEATHER, STOCK, ORDERS]


def _run(client: OpenAI, text: str, **run: Any) -> Run:
    assistant = client.beta.assistants.create(model="gpt-4o", tools=TOOLS)  # type: ignore[arg-type]
    thread = client.beta.threads.create(messages=[{"role": "user", "content": text}])
    return client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id, **run)


def _called(run: Run) -> list[str]:
    assert run.status == "requires_action" and run.required_action is not None, run
    return [call.function.name for call in run.required_action.submit_tool_outputs.tool_calls]


def test_the_paris_weather_question_calls_get_weather(client: OpenAI) -> None:
    run = _run(client, "What's the weather like in Paris today?")
    assert run.tool_choice == "auto"
    assert _called(run) == ["get_weather"]
    [call] = run.required_action.submit_tool_outputs.tool_calls  # type: ignore[union-attr]
    assert set(json.loads(call.function.arguments)) == {"city"}
    done = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id, thread_id=run.thread_id, tool_outputs=[{"tool_call_id": call.id, "output": "18C, sunny"}]
    )
    assert done.status == "completed"
    answer = client.beta.threads.messages.list(run.thread_id, limit=1).data[0]
    assert answer.content[0].text.value == "Based on the tool results: get_weather returned 18C, sunny."  # type: ignore[union-attr]


def test_whole_words_of_camel_and_dashed_names_with_plurals(client: OpenAI) -> None:
    assert _called(_run(client, "Any ORDERS and stock prices?")) == ["get-stock-price", "lookupOrders"]
    assert _called(_run(client, "Any orders and stock prices?", parallel_tool_calls=False)) == ["get-stock-price"]
    text_only = _run(client, "Get the weatherman on the line")
    assert text_only.status == "completed", "whole words only"
    answer = client.beta.threads.messages.list(text_only.thread_id, limit=1).data[0]
    assert answer.content[0].text.value == "You said: Get the weatherman on the line"  # type: ignore[union-attr]


def test_required_calls_only_the_functions_the_question_asks_for(client: OpenAI) -> None:
    assert _called(_run(client, "Where are my orders?", tool_choice="required")) == ["lookupOrders"]
    everything = _run(client, "Get me what you can.", tool_choice="required")
    assert _called(everything) == ["get_weather", "get-stock-price", "lookupOrders"], "asks for none: every one"

