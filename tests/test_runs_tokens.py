"""Token counts, truncation and the token bounds of a run, through the SDK: usage equals an independent count
built from `emulator.tokens` primitives (the cookbook's chat convention: 3 tokens per message plus its role and
content, 3 to prime the reply), in the model's encoding; `last_messages` and `auto` truncation keep what they
should; `max_prompt_tokens` / `max_completion_tokens` end the run `incomplete` and `create_and_poll` returns.
"""

from __future__ import annotations

from typing import Any

import httpx
from openai import OpenAI

from emulator import tokens

O200K, CL100K = "o200k_base", "cl100k_base"
INSTRUCTIONS = "You answer questions about the weather, briefly."


def message_tokens(role: str, text: str, encoding: str = O200K) -> int:
    return tokens.TOKENS_PER_MESSAGE + tokens.count(role, encoding) + tokens.count(text, encoding)


def prompt_tokens(texts: list[str], encoding: str = O200K, instructions: str = INSTRUCTIONS) -> int:
    """What a prompt of these user messages after `instructions` (no tools) costs, counted independently."""
    system = message_tokens("system", instructions, encoding)
    return tokens.PROMPT_PRIMING_TOKENS + system + sum(message_tokens("user", text, encoding) for text in texts)


def make(client: OpenAI, texts: list[str], model: str = "gpt-4o", **assistant: Any) -> tuple[str, str]:
    created = client.beta.assistants.create(model=model, instructions=INSTRUCTIONS, **assistant)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": text} for text in texts])
    return created.id, thread.id


def assistant_messages(client: OpenAI, thread_id: str) -> list[Any]:
    return [m for m in client.beta.threads.messages.list(thread_id, order="asc") if m.role == "assistant"]


def test_usage_equals_an_independent_count(client: OpenAI) -> None:
    text = "What's the weather like in Reykjavík today? Answer in one sentence."
    assistant_id, thread_id = make(client, [text])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id)
    assert run.usage is not None
    assert run.usage.prompt_tokens == prompt_tokens([text])
    assert run.usage.completion_tokens == tokens.count(f"You said: {text}", O200K)
    assert run.usage.total_tokens == run.usage.prompt_tokens + run.usage.completion_tokens


def test_the_count_uses_the_models_encoding(client: OpenAI) -> None:
    text = "Привет! Какая сегодня погода в Санкт-Петербурге? 今日はいい天気ですね。"
    assert prompt_tokens([text], CL100K) != prompt_tokens([text], O200K), "the two encodings differ on this text"
    assistant_id, thread_id = make(client, [text], model="gpt-4-turbo")
    run = client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id)
    assert run.usage is not None
    assert run.usage.prompt_tokens == prompt_tokens([text], CL100K)
    assert run.usage.completion_tokens == tokens.count(f"You said: {text}", CL100K)


HISTORY = [f"Message {i}: " + "the quick brown fox jumps over the lazy dog " * (2 + i) for i in range(8)]


def test_last_messages_keeps_the_last_n(client: OpenAI) -> None:
    assistant_id, _ = make(client, [])
    usage: dict[str, int] = {}
    for label, strategy in (("auto", {"type": "auto"}), ("1", {"type": "last_messages", "last_messages": 1}),
                            ("3", {"type": "last_messages", "last_messages": 3})):  # fmt: skip
        thread = client.beta.threads.create(messages=[{"role": "user", "content": text} for text in HISTORY])
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread.id,
            assistant_id=assistant_id,
            truncation_strategy=strategy,  # type: ignore[arg-type]
        )
        assert run.status == "completed" and run.usage is not None
        assert run.truncation_strategy.model_dump() == {"last_messages": None, "type": "auto", **strategy}
        usage[label] = run.usage.prompt_tokens
        assert assistant_messages(client, thread.id)[0].content[0].text.value == f"You said: {HISTORY[-1]}"  # type: ignore[union-attr]
    assert usage["auto"] == prompt_tokens(HISTORY), "auto keeps everything that fits the window"
    assert usage["1"] == prompt_tokens(HISTORY[-1:])
    assert usage["3"] == prompt_tokens(HISTORY[-3:])
    assert usage["1"] < usage["3"] < usage["auto"]


def test_auto_truncation_fits_max_prompt_tokens(client: OpenAI) -> None:
    assert prompt_tokens(HISTORY) > 256
    assistant_id, thread_id = make(client, HISTORY)
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread_id, assistant_id=assistant_id, max_prompt_tokens=256
    )
    assert run.status == "completed" and run.max_prompt_tokens == 256 and run.usage is not None
    kept = max(n for n in range(1, len(HISTORY) + 1) if prompt_tokens(HISTORY[-n:]) <= 256)
    assert run.usage.prompt_tokens == prompt_tokens(HISTORY[-kept:]) <= 256, "the oldest messages were dropped"
    assert prompt_tokens(HISTORY[-kept - 1 :]) > 256, "and no more than needed"
    (step,) = client.beta.threads.runs.steps.list(run.id, thread_id=thread_id)
    assert step.usage is not None and step.usage.prompt_tokens == run.usage.prompt_tokens


HUGE = "an extremely long question " * 400


def test_a_prompt_that_cannot_fit_max_prompt_tokens_ends_incomplete(client: OpenAI, http: httpx.Client) -> None:
    assistant_id, thread_id = make(client, [HUGE])
    created = client.beta.threads.runs.create(thread_id=thread_id, assistant_id=assistant_id, max_prompt_tokens=256)
    run = client.beta.threads.runs.retrieve(created.id, thread_id=thread_id)
    assert run.status == "incomplete", "ended by the first observation: a poller cannot loop"
    assert run.incomplete_details is not None and run.incomplete_details.reason == "max_prompt_tokens"
    assert run.expires_at is None and run.usage is not None and run.usage.completion_tokens == 0
    assert list(client.beta.threads.runs.steps.list(run.id, thread_id=thread_id)) == []
    assert assistant_messages(client, thread_id) == [], "no answer was started"
    assert http.post(f"/threads/{thread_id}/messages", json={"role": "user", "content": "ok"}).status_code == 200

    _, second = make(client, [HUGE])
    polled = client.beta.threads.runs.create_and_poll(
        thread_id=second, assistant_id=assistant_id, max_prompt_tokens=256
    )
    assert polled.status == "incomplete" and polled.incomplete_details.reason == "max_prompt_tokens"  # type: ignore[union-attr]


LONG = "please repeat these words back to me " * 60


def test_max_completion_tokens_cuts_the_answer_and_the_message_is_incomplete(client: OpenAI) -> None:
    answer = f"You said: {LONG}"
    assert tokens.count(answer, O200K) > 256
    assistant_id, thread_id = make(client, [LONG])
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread_id, assistant_id=assistant_id, max_completion_tokens=256
    )
    assert run.status == "incomplete" and run.max_completion_tokens == 256
    assert run.incomplete_details is not None and run.incomplete_details.reason == "max_completion_tokens"
    assert run.usage is not None and run.usage.completion_tokens == 256
    assert run.usage.prompt_tokens == prompt_tokens([LONG])
    assert run.completed_at is None and run.expires_at is None

    (message,) = assistant_messages(client, thread_id)
    assert message.status == "incomplete" and message.incomplete_details is not None
    assert message.incomplete_details.reason == "max_tokens"
    assert message.incomplete_at is not None and message.completed_at is None
    text = message.content[0].text.value  # type: ignore[union-attr]
    assert answer.startswith(text) and len(text) < len(answer)
    assert text == tokens.decode(tokens.encode(answer, O200K)[:256], O200K), "the first 256 tokens of the answer"
    (step,) = client.beta.threads.runs.steps.list(run.id, thread_id=thread_id)
    assert step.status == "completed" and step.usage is not None
    assert step.usage.model_dump() == run.usage.model_dump()


def tool_run(client: OpenAI, output: str) -> tuple[list[Any], Any]:
    weather = {
        "type": "function",
        "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}},
    }
    assistant_id, thread_id = make(client, ["What does get_weather say?"], tools=[weather])
    runs = client.beta.threads.runs
    run = runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id)
    (call,) = run.required_action.submit_tool_outputs.tool_calls  # type: ignore[union-attr]
    done = runs.submit_tool_outputs_and_poll(
        run_id=run.id, thread_id=thread_id, tool_outputs=[{"tool_call_id": call.id, "output": output}]
    )
    return list(runs.steps.list(run.id, thread_id=thread_id, order="asc")), done


def test_tool_definitions_and_outputs_are_counted_and_usage_sums_the_model_calls(client: OpenAI) -> None:
    short, long = "sunny", "sunny with a light breeze from the north-west and scattered clouds " * 5
    (short_tool, short_text), short_run = tool_run(client, short)
    (long_tool, long_text), long_run = tool_run(client, long)
    assert short_tool.usage.prompt_tokens > prompt_tokens(["What does get_weather say?"]), "tool definitions count"
    assert short_tool.usage == long_tool.usage
    grown = long_text.usage.prompt_tokens - short_text.usage.prompt_tokens
    assert grown == tokens.count(long, O200K) - tokens.count(short, O200K), "the output is in the second prompt"
    for (tool_step, text_step), run in (((short_tool, short_text), short_run), ((long_tool, long_text), long_run)):
        assert run.status == "completed"
        for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
            assert getattr(run.usage, key) == getattr(tool_step.usage, key) + getattr(text_step.usage, key)
    assert short_text.usage.completion_tokens == tokens.count(
        f"Based on the tool results: get_weather returned {short}.", O200K
    )
