"""An application test written against the emulator's pytest plugin (run: `pytest examples/`)."""

from __future__ import annotations

import json

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def answer_with_weather(client, assistant_id: str, question: str) -> str:  # the application code under test
    thread = client.beta.threads.create(messages=[{"role": "user", "content": question}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant_id)
    while run.status == "requires_action":
        outputs = [
            {"tool_call_id": call.id, "output": f"18C in {json.loads(call.function.arguments)['city']}"}
            for call in run.required_action.submit_tool_outputs.tool_calls
        ]
        run = client.beta.threads.runs.submit_tool_outputs_and_poll(
            thread_id=thread.id, run_id=run.id, tool_outputs=outputs
        )
    return client.beta.threads.messages.list(thread.id, limit=1).data[0].content[0].text.value


def test_scripted_tool_calling_flow(emulator):
    emulator.script(
        {"type": "function_calls", "calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]},
        {"type": "text", "text": "It is 18C in Paris."},
    )
    assistant = emulator.client.beta.assistants.create(model="gpt-5.5", tools=[WEATHER])
    assert answer_with_weather(emulator.client, assistant.id, "Weather in Paris?") == "It is 18C in Paris."
    played = emulator.consumed_turns()
    assert [turn["turn"]["type"] for turn in played] == ["function_calls", "text"]
    assert played[1]["request"]["tool_results"][0]["output"] == "18C in Paris"


def test_tenants_are_isolated(emulator, openai_client):
    assert openai_client.beta.assistants.list().data == []
    emulator.advance(10)
