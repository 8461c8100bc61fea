"""The file_search tool inside runs: the search step, results, prompt tokens, citations and streaming."""

from __future__ import annotations

import httpx
import pytest
from openai import AssistantEventHandler, BadRequestError, OpenAI
from openai.types.beta.threads import Message
from openai.types.beta.threads.runs import RunStep

from emulator import tokens
from tests.oracle import conforms

CONTENT = "step_details.tool_calls[*].file_search.results[*].content"
DOCS = {
    "cats.txt": "Cats sleep sixteen hours a day. They purr when content and knead soft blankets.",
    "rockets.md": "Rockets burn liquid oxygen and kerosene. The Saturn V stood 110 metres tall.",
    "tea.txt": "Green tea is steeped at eighty degrees for two minutes.",
}


@pytest.fixture
def store_id(client: OpenAI) -> str:
    store = client.vector_stores.create(name="kb")
    for name, body in DOCS.items():
        client.vector_stores.files.upload_and_poll(vector_store_id=store.id, file=(name, body.encode()))
    return store.id


def _assistant(client: OpenAI, store_id: str, **file_search: object) -> str:
    tool: dict[str, object] = {"type": "file_search"}
    if file_search:
        tool["file_search"] = file_search
    return client.beta.assistants.create(
        model="gpt-4o",
        tools=[tool],
        tool_resources={"file_search": {"vector_store_ids": [store_id]}},  # type: ignore[list-item]
    ).id


def _ask(client: OpenAI, assistant_id: str, question: str, **run: object) -> tuple[str, str]:
    thread = client.beta.threads.create(messages=[{"role": "user", "content": question}])
    result = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant_id, **run)  # type: ignore[arg-type]
    assert result.status == "completed", result.last_error
    return thread.id, result.id


def test_the_answer_cites_the_retrieved_chunk_at_exact_indexes(
    client: OpenAI, http: httpx.Client, store_id: str
) -> None:
    assistant = _assistant(client, store_id)
    thread_id, _ = _ask(client, assistant, "How long do cats sleep?")
    raw = http.get(f"/threads/{thread_id}/messages", params={"limit": 1}).json()["data"][0]
    message = conforms(raw, Message, "MessageObject")
    text = message.content[0].text  # type: ignore[union-attr]
    assert text.value.startswith("According to the files: Cats sleep sixteen hours a day.")
    cats_file = next(f for f in client.vector_stores.files.list(store_id) if "cats" in _filename(client, f.id))
    assert [annotation.type for annotation in text.annotations] == ["file_citation"]
    citation = text.annotations[0]
    assert text.value[citation.start_index : citation.end_index] == citation.text  # type: ignore[union-attr]
    assert citation.text.startswith("【") and citation.text.endswith("†cats.txt】")  # type: ignore[union-attr]
    assert citation.file_citation.file_id == cats_file.id  # type: ignore[union-attr]


def _filename(client: OpenAI, file_id: str) -> str:
    return client.files.retrieve(file_id).filename


def test_the_search_step_holds_results_with_content_only_when_included(
    client: OpenAI, http: httpx.Client, store_id: str
) -> None:
    assistant = _assistant(client, store_id)
    thread_id, run_id = _ask(client, assistant, "What do rockets burn?")
    plain = http.get(f"/threads/{thread_id}/runs/{run_id}/steps", params={"order": "asc"}).json()["data"]
    assert [step["type"] for step in plain] == ["tool_calls", "message_creation"]
    search = conforms(plain[0], RunStep, "RunStepObject")
    call = search.step_details.tool_calls[0]  # type: ignore[union-attr]
    assert call.type == "file_search" and call.id.startswith("call_")
    assert call.file_search.ranking_options.ranker == "default_2024_08_21"  # type: ignore[union-attr]
    results = call.file_search.results or []  # type: ignore[union-attr]
    assert results[0].file_name == "rockets.md" and 0 < results[0].score <= 1
    assert all(result.content is None for result in results)
    included = http.get(
        f"/threads/{thread_id}/runs/{run_id}/steps", params={"order": "asc", "include[]": CONTENT}
    ).json()["data"]
    first = included[0]["step_details"]["tool_calls"][0]["file_search"]["results"][0]
    assert first["content"] == [{"type": "text", "text": DOCS["rockets.md"]}]


def test_retrieved_chunks_are_counted_in_the_next_prompt(client: OpenAI, store_id: str) -> None:
    assistant = _assistant(client, store_id)
    thread_id, run_id = _ask(client, assistant, "How is green tea steeped?")
    steps = list(client.beta.threads.runs.steps.list(run_id=run_id, thread_id=thread_id, order="asc"))
    search_usage, answer_usage = steps[0].usage, steps[1].usage
    assert search_usage is not None and answer_usage is not None
    hits = steps[0].step_details.tool_calls[0].file_search.results  # type: ignore[union-attr]
    markers = [f"【0:{index}†{hit.file_name}】" for index, hit in enumerate(hits or [])]
    texts = [DOCS[hit.file_name] for hit in hits or []]
    expected_extra = sum(
        tokens.count_message("tool", f"{marker} {text}", "o200k_base")
        for marker, text in zip(markers, texts, strict=True)
    )
    assert answer_usage.prompt_tokens - search_usage.prompt_tokens == expected_extra
    run = client.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
    assert run.usage.total_tokens == search_usage.total_tokens + answer_usage.total_tokens  # type: ignore[union-attr]


def test_max_num_results_and_score_threshold_are_honoured(client: OpenAI, store_id: str) -> None:
    wide = _assistant(client, store_id, max_num_results=1)
    thread_id, run_id = _ask(client, wide, "cats rockets tea")
    step = next(iter(client.beta.threads.runs.steps.list(run_id=run_id, thread_id=thread_id, order="asc")))
    assert len(step.step_details.tool_calls[0].file_search.results) == 1  # type: ignore[union-attr, arg-type]
    strict = _assistant(client, store_id, ranking_options={"score_threshold": 1.0})
    thread_id, run_id = _ask(client, strict, "cats")
    step = next(iter(client.beta.threads.runs.steps.list(run_id=run_id, thread_id=thread_id, order="asc")))
    scores = [result.score for result in step.step_details.tool_calls[0].file_search.results or []]  # type: ignore[union-attr]
    assert all(score >= 1.0 for score in scores)


def test_nothing_found_is_said_and_cites_nothing(client: OpenAI, store_id: str) -> None:
    assistant = _assistant(client, store_id)
    thread_id, _ = _ask(client, assistant, "zeppelin quantum")
    text = client.beta.threads.messages.list(thread_id, limit=1).data[0].content[0].text  # type: ignore[union-attr]
    assert (text.value, text.annotations) == ("I found nothing relevant in the files.", [])


def test_tool_choice_none_skips_the_search(client: OpenAI, store_id: str) -> None:
    assistant = _assistant(client, store_id)
    thread_id, run_id = _ask(client, assistant, "cats?", tool_choice="none")
    steps = list(client.beta.threads.runs.steps.list(run_id=run_id, thread_id=thread_id))
    assert [step.type for step in steps] == ["message_creation"]


def test_a_scripted_search_uses_its_own_query(client: OpenAI, control: httpx.Client, store_id: str) -> None:
    control.post("/script", json={"turns": [{"type": "file_search", "query": "kerosene"}]}).raise_for_status()
    assistant = _assistant(client, store_id)
    thread_id, run_id = _ask(client, assistant, "Tell me about pets")
    step = next(iter(client.beta.threads.runs.steps.list(run_id=run_id, thread_id=thread_id, order="asc")))
    assert step.step_details.tool_calls[0].file_search.results[0].file_name == "rockets.md"  # type: ignore[union-attr, index]


def test_an_expired_store_cannot_be_used_by_a_run(client: OpenAI, control: httpx.Client) -> None:
    store = client.vector_stores.create(name="short", expires_after={"anchor": "last_active_at", "days": 1})
    assistant = _assistant(client, store.id)
    control.post("/clock/advance", json={"seconds": 2 * 86_400}).raise_for_status()
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(BadRequestError) as refused:
        client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant)
    assert store.id in refused.value.message and "expired" in refused.value.message


def test_streamed_citations_ride_on_the_delta_that_completes_them(client: OpenAI, store_id: str) -> None:
    assistant = _assistant(client, store_id)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "What do rockets burn?"}])
    seen: list[tuple[str, object]] = []

    class Recorder(AssistantEventHandler):
        def on_event(self, event) -> None:  # type: ignore[no-untyped-def]
            seen.append((event.event, event.data))

    with client.beta.threads.runs.stream(
        thread_id=thread.id, assistant_id=assistant, event_handler=Recorder(), include=[CONTENT]
    ) as stream:
        stream.until_done()
    names = [name for name, _ in seen]
    assert names[:7] == [
        "thread.run.created",
        "thread.run.queued",
        "thread.run.in_progress",
        "thread.run.step.created",
        "thread.run.step.in_progress",
        "thread.run.step.delta",
        "thread.run.step.completed",
    ]
    search_step = seen[6][1]
    assert search_step.step_details.tool_calls[0].file_search.results[0].content  # type: ignore[attr-defined]
    deltas = [data for name, data in seen if name == "thread.message.delta"]
    streamed = "".join(delta.delta.content[0].text.value for delta in deltas)  # type: ignore[attr-defined]
    final = stream.get_final_messages()[0].content[0].text  # type: ignore[union-attr]
    assert streamed == final.value
    carried = [
        (delta.delta.content[0].text.annotations or [])
        for delta in deltas  # type: ignore[attr-defined]
    ]
    flat = [annotation for group in carried[1:] for annotation in group]
    assert [(a.start_index, a.end_index) for a in flat] == [(a.start_index, a.end_index) for a in final.annotations]
