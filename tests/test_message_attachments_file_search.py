"""Files attached to messages for file_search join the thread's vector store, as on the hosted API.

Every entry point (message create, thread create with messages, a run's `additional_messages`, create thread and
run) makes the thread's store or joins it; the store shows in `tool_resources` and expires 7 days after its
last activity; a file attached twice is there once; a run waits for the files still being processed (seen
under `polls:3`) and answers from them with a `file_citation`. Code-interpreter attachments stay out of it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openai import BadRequestError, OpenAI
from openai.types.beta.threads import TextContentBlock

from tests.extra_server import extra_server
from tests.server import RunningServer
from tests.vector_stores_support import advance_clock, upload

SEVEN_DAYS = {"anchor": "last_active_at", "days": 7}
CAPYBARA = "The capybara is the largest living rodent. It lives near rivers in South America."
OTTERS = "Sea otters hold hands while they sleep so that they do not drift apart."


def _search(file_id: str) -> dict[str, object]:
    return {"file_id": file_id, "tools": [{"type": "file_search"}]}


def _thread_store_id(client: OpenAI, thread_id: str) -> str:
    resources = client.beta.threads.retrieve(thread_id).tool_resources
    assert resources is not None and resources.file_search is not None, resources
    [store_id] = resources.file_search.vector_store_ids or []  # type: ignore[misc]
    return store_id


def _store_file_ids(client: OpenAI, store_id: str) -> list[str]:
    return sorted(item.id for item in client.vector_stores.files.list(vector_store_id=store_id))


def _searching_assistant(client: OpenAI) -> str:
    return client.beta.assistants.create(model="gpt-4o", tools=[{"type": "file_search"}]).id


def _cited_answer(client: OpenAI, thread_id: str) -> tuple[str, list[str]]:
    """The text of the thread's latest message and the file ids its file_citation annotations name."""
    latest = client.beta.threads.messages.list(thread_id, order="desc", limit=1).data[0]
    text = next(part for part in latest.content if isinstance(part, TextContentBlock)).text
    cited = []
    for annotation in text.annotations:
        assert annotation.type == "file_citation", annotation
        assert text.value[annotation.start_index : annotation.end_index] == annotation.text
        cited.append(annotation.file_citation.file_id)
    return text.value, cited


# ------------------------------------------------------------------------------------------- the four entry points


def test_message_create_makes_the_thread_store_with_the_thread_expiry(client: OpenAI) -> None:
    file_id = upload(client, "capybara.txt", CAPYBARA)
    thread = client.beta.threads.create()
    assert thread.tool_resources is None or thread.tool_resources.file_search is None
    message = client.beta.threads.messages.create(
        thread.id, role="user", content="Read this", attachments=[_search(file_id)]
    )
    assert [attachment.file_id for attachment in message.attachments or []] == [file_id]
    store_id = _thread_store_id(client, thread.id)
    store = client.vector_stores.retrieve(store_id)
    assert store.expires_after is not None and store.expires_after.model_dump() == SEVEN_DAYS
    assert store.expires_at == store.last_active_at + 7 * 86_400
    assert _store_file_ids(client, store_id) == [file_id]
    assert store.file_counts.total == 1
    assert [listed.id for listed in client.vector_stores.list()] == [store_id]


def test_thread_create_with_messages_makes_one_store_they_all_join(client: OpenAI) -> None:
    first, second = upload(client, "capybara.txt", CAPYBARA), upload(client, "otters.md", OTTERS)
    thread = client.beta.threads.create(
        messages=[
            {"role": "user", "content": "one", "attachments": [_search(first)]},  # type: ignore[list-item]
            {"role": "user", "content": "two", "attachments": [_search(second)]},  # type: ignore[list-item]
        ]
    )
    assert thread.tool_resources is not None and thread.tool_resources.file_search is not None
    [store_id] = thread.tool_resources.file_search.vector_store_ids or []  # type: ignore[misc]
    assert _thread_store_id(client, thread.id) == store_id
    assert _store_file_ids(client, store_id) == sorted([first, second])
    assert client.vector_stores.retrieve(store_id).expires_after.model_dump() == SEVEN_DAYS  # type: ignore[union-attr]


def test_additional_messages_of_a_run_join_the_thread_store(client: OpenAI) -> None:
    first, second = upload(client, "capybara.txt", CAPYBARA), upload(client, "otters.md", OTTERS)
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "one", "attachments": [_search(first)]}]  # type: ignore[list-item]
    )
    store_id = _thread_store_id(client, thread.id)
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id,
        assistant_id=_searching_assistant(client),
        additional_messages=[
            {"role": "user", "content": "Why do sea otters hold hands?", "attachments": [_search(second)]}  # type: ignore[list-item]
        ],
        poll_interval_ms=10,
    )
    assert run.status == "completed", run.last_error
    assert _thread_store_id(client, thread.id) == store_id
    assert _store_file_ids(client, store_id) == sorted([first, second])
    text, cited = _cited_answer(client, thread.id)
    assert text.startswith("According to the files: Sea otters hold hands while they sleep")
    assert cited and set(cited) == {second}


def test_create_thread_and_run_makes_the_store_and_answers_from_it(client: OpenAI) -> None:
    file_id = upload(client, "capybara.txt", CAPYBARA)
    run = client.beta.threads.create_and_run_poll(
        assistant_id=_searching_assistant(client),
        thread={
            "messages": [
                {"role": "user", "content": "Which rodent is the largest?", "attachments": [_search(file_id)]}  # type: ignore[list-item]
            ]
        },
        poll_interval_ms=10,
    )
    assert run.status == "completed", run.last_error
    store_id = _thread_store_id(client, run.thread_id)
    assert _store_file_ids(client, store_id) == [file_id]
    text, cited = _cited_answer(client, run.thread_id)
    assert text.startswith("According to the files: The capybara is the largest living rodent.")
    assert cited == [file_id]


def test_create_thread_and_run_stream_shows_the_store_on_the_created_thread(http: httpx.Client, client: OpenAI) -> None:
    file_id = upload(client, "capybara.txt", CAPYBARA)
    body = {
        "assistant_id": _searching_assistant(client),
        "stream": True,
        "thread": {"messages": [{"role": "user", "content": "capybara?", "attachments": [_search(file_id)]}]},
    }
    with http.stream("POST", "/threads/runs", json=body) as response:
        assert response.status_code == 200
        lines = [line for line in response.iter_lines() if line.startswith("data: {")]
    created = next(line for line in lines if '"object":"thread"' in line.replace(" ", ""))
    thread = httpx.Response(200, content=created.removeprefix("data: ")).json()
    [store_id] = thread["tool_resources"]["file_search"]["vector_store_ids"]
    assert _store_file_ids(client, store_id) == [file_id]
    text, cited = _cited_answer(client, thread["id"])
    assert cited == [file_id], text


# ------------------------------------------------------------------------------------------- joining, not duplicating


def test_later_attachments_join_and_a_file_attached_twice_is_there_once(client: OpenAI) -> None:
    first, second = upload(client, "capybara.txt", CAPYBARA), upload(client, "otters.md", OTTERS)
    thread = client.beta.threads.create()
    messages = client.beta.threads.messages
    messages.create(thread.id, role="user", content="a", attachments=[_search(first), _search(first)])  # type: ignore[list-item]
    store_id = _thread_store_id(client, thread.id)
    messages.create(thread.id, role="user", content="b", attachments=[_search(first)])  # type: ignore[list-item]
    messages.create(
        thread.id,
        role="user",
        content="c",
        attachments=[{"file_id": second, "tools": [{"type": "code_interpreter"}, {"type": "file_search"}]}],
    )
    assert _thread_store_id(client, thread.id) == store_id
    assert _store_file_ids(client, store_id) == sorted([first, second])
    store = client.vector_stores.retrieve(store_id)
    assert (store.file_counts.total, store.file_counts.completed) == (2, 2)
    assert len(client.vector_stores.search(store_id, query="capybara rodent").data) == 1
    assert [listed.id for listed in client.vector_stores.list()] == [store_id]


def test_a_thread_with_a_store_of_its_own_gets_the_files_there(client: OpenAI) -> None:
    own = client.vector_stores.create(name="mine")
    file_id = upload(client, "capybara.txt", CAPYBARA)
    thread = client.beta.threads.create(tool_resources={"file_search": {"vector_store_ids": [own.id]}})
    client.beta.threads.messages.create(thread.id, role="user", content="x", attachments=[_search(file_id)])  # type: ignore[list-item]
    assert _thread_store_id(client, thread.id) == own.id
    assert _store_file_ids(client, own.id) == [file_id]
    assert client.vector_stores.retrieve(own.id).expires_after is None, "a store the user made keeps its expiry"


def test_a_deleted_thread_store_is_replaced(client: OpenAI) -> None:
    first, second = upload(client, "capybara.txt", CAPYBARA), upload(client, "otters.md", OTTERS)
    thread = client.beta.threads.create()
    client.beta.threads.messages.create(thread.id, role="user", content="x", attachments=[_search(first)])  # type: ignore[list-item]
    gone = _thread_store_id(client, thread.id)
    client.vector_stores.delete(gone)
    client.beta.threads.messages.create(thread.id, role="user", content="y", attachments=[_search(second)])  # type: ignore[list-item]
    replacement = _thread_store_id(client, thread.id)
    assert replacement != gone
    assert _store_file_ids(client, replacement) == [second]


def test_an_expired_thread_store_refuses_new_attachments(client: OpenAI, control: httpx.Client) -> None:
    first, second = upload(client, "capybara.txt", CAPYBARA), upload(client, "otters.md", OTTERS)
    thread = client.beta.threads.create()
    client.beta.threads.messages.create(thread.id, role="user", content="x", attachments=[_search(first)])  # type: ignore[list-item]
    store_id = _thread_store_id(client, thread.id)
    advance_clock(control, 7 * 86_400)
    with pytest.raises(BadRequestError) as refused:
        client.beta.threads.messages.create(thread.id, role="user", content="y", attachments=[_search(second)])  # type: ignore[list-item]
    assert refused.value.body == {  # type: ignore[comparison-overlap]
        "message": f"Invalid 'attachments': vector store '{store_id}' has expired and can no longer be used.",
        "type": "invalid_request_error",
        "param": "attachments",
        "code": None,
    }
    assert client.vector_stores.retrieve(store_id).status == "expired"
    assert len(client.beta.threads.messages.list(thread.id).data) == 1


def test_the_thread_vector_stores_helper_defaults_to_the_thread_expiry(client: OpenAI) -> None:
    file_id = upload(client, "capybara.txt", CAPYBARA)
    helper = {"file_search": {"vector_stores": [{"file_ids": [file_id]}]}}
    thread = client.beta.threads.create(tool_resources=helper)  # type: ignore[arg-type]
    [thread_store] = thread.tool_resources.file_search.vector_store_ids  # type: ignore[union-attr,misc]
    assert client.vector_stores.retrieve(thread_store).expires_after.model_dump() == SEVEN_DAYS  # type: ignore[union-attr]
    assistant = client.beta.assistants.create(model="gpt-4o", tool_resources=helper)  # type: ignore[arg-type]
    [assistant_store] = assistant.tool_resources.file_search.vector_store_ids  # type: ignore[union-attr,misc]
    assert client.vector_stores.retrieve(assistant_store).expires_after is None, "assistants' stores never expire"


# ---------------------------------------------------------------------------------------------------- validation


def test_a_kind_file_search_does_not_read_is_refused_and_nothing_is_stored(client: OpenAI, http: httpx.Client) -> None:
    image = upload(client, "photo.png", b"\x89PNG\r\n\x1a\n")
    bare = upload(client, "README", "no extension")
    thread = client.beta.threads.create()
    for file_id, shown in ((image, ".png"), (bare, "none")):
        body = {"role": "user", "content": "x", "attachments": [_search(file_id)]}
        response = http.post(f"/threads/{thread.id}/messages", json=body)
        assert response.status_code == 400
        assert response.json()["error"] == {
            "message": f"Files with extensions [{shown}] are not supported for retrieval. See "
            "https://platform.openai.com/docs/assistants/tools/file-search/supported-files",
            "type": "invalid_request_error",
            "param": "attachments",
            "code": "unsupported_file",
        }
    response = http.post(
        "/threads", json={"messages": [{"role": "user", "content": "x", "attachments": [_search(image)]}]}
    )
    assert response.status_code == 400 and response.json()["error"]["param"] == "messages[0].attachments"
    assert list(client.vector_stores.list()) == []
    assert client.beta.threads.messages.list(thread.id).data == []
    kept = client.beta.threads.messages.create(
        thread.id, role="user", content="x", attachments=[{"file_id": image, "tools": [{"type": "code_interpreter"}]}]
    )
    assert kept.attachments is not None and kept.attachments[0].file_id == image


def test_unknown_files_and_tools_are_refused(http: httpx.Client, client: OpenAI) -> None:
    thread_id = client.beta.threads.create().id
    response = http.post(
        f"/threads/{thread_id}/messages",
        json={"role": "user", "content": "x", "attachments": [_search("file-nope")]},
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "Invalid 'attachments': no file found with id 'file-nope'."
    file_id = upload(client, "capybara.txt", CAPYBARA)
    response = http.post(
        f"/threads/{thread_id}/messages",
        json={"role": "user", "content": "x", "attachments": [{"file_id": file_id, "tools": [{"type": "retrieval"}]}]},
    )
    assert response.status_code == 400 and response.json()["error"]["param"].startswith("attachments[0].tools[0]")
    assert list(client.vector_stores.list()) == []


# --------------------------------------------------------------------------------------------- code_interpreter


def test_code_interpreter_attachments_make_no_store(client: OpenAI) -> None:
    sheet = upload(client, "data.csv", "a,b\n1,2\n")
    notes = upload(client, "capybara.txt", CAPYBARA)
    thread = client.beta.threads.create(
        messages=[
            {
                "role": "user",
                "content": "x",
                "attachments": [
                    {"file_id": sheet, "tools": [{"type": "code_interpreter"}]},
                    _search(notes),
                ],
            }  # type: ignore[list-item]
        ]
    )
    store_id = _thread_store_id(client, thread.id)
    assert _store_file_ids(client, store_id) == [notes], "only the file_search attachment joins the store"
    assert thread.tool_resources is not None and thread.tool_resources.code_interpreter is None

    code_only = {"file_id": sheet, "tools": [{"type": "code_interpreter"}]}
    only_code = client.beta.threads.create(
        messages=[{"role": "user", "content": "x", "attachments": [code_only]}]  # type: ignore[list-item]
    )
    assert only_code.tool_resources is None or only_code.tool_resources.file_search is None
    assert [listed.id for listed in client.vector_stores.list()] == [store_id]


# ---------------------------------------------------------------------------------- the run waits for the files


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """Runs and vector store files progress on their third observation (`polls:3`)."""
    data_dir: Path = tmp_path_factory.mktemp("attachments-polls")
    with extra_server(data_dir, EMULATOR_RUN_PROGRESSION="polls:3", EMULATOR_POLL_AFTER_MS="10") as running:
        yield running


@pytest.fixture
def slow(slow_server: RunningServer) -> OpenAI:
    return OpenAI(base_url=slow_server.base_url, api_key=f"sk-test-{uuid.uuid4().hex}", max_retries=0)


def _attached_thread(sdk: OpenAI, question: str) -> tuple[str, str]:
    file_id = upload(sdk, "capybara.txt", CAPYBARA)
    thread = sdk.beta.threads.create(
        messages=[{"role": "user", "content": question, "attachments": [_search(file_id)]}]  # type: ignore[list-item]
    )
    return thread.id, file_id


def test_a_run_waits_for_the_thread_files_then_cites_them(slow: OpenAI) -> None:
    thread_id, file_id = _attached_thread(slow, "Which rodent is the largest?")
    run = slow.beta.threads.runs.create(thread_id=thread_id, assistant_id=_searching_assistant(slow))
    statuses = [slow.beta.threads.runs.retrieve(run.id, thread_id=thread_id).status for _ in range(5)]
    # Reads 1-2: the run's own polls:3; reads 3-4: it observes the file (1, 2) and waits; read 5: the file is
    # processed on its third observation, and the run goes on to search it and answer.
    assert statuses == ["queued", "queued", "queued", "queued", "completed"]
    steps = slow.beta.threads.runs.steps.list(run.id, thread_id=thread_id, order="asc").data
    search = steps[0].step_details.tool_calls[0]  # type: ignore[union-attr]
    assert search.type == "file_search" and [r.file_id for r in search.file_search.results] == [file_id]  # type: ignore[union-attr]
    text, cited = _cited_answer(slow, thread_id)
    assert text.startswith("According to the files: The capybara is the largest living rodent.")
    assert cited == [file_id]
    store = slow.vector_stores.retrieve(_thread_store_id(slow, thread_id))
    assert store.file_counts.completed == 1


def test_a_stream_waits_for_the_thread_files(slow: OpenAI) -> None:
    thread_id, file_id = _attached_thread(slow, "Which rodent is the largest?")
    with slow.beta.threads.runs.stream(thread_id=thread_id, assistant_id=_searching_assistant(slow)) as stream:
        stream.until_done()
        final = stream.get_final_run()
    assert final.status == "completed"
    text, cited = _cited_answer(slow, thread_id)
    assert cited == [file_id], text


def test_a_run_waits_at_most_sixty_seconds(slow: OpenAI, slow_server: RunningServer) -> None:
    thread_id, _ = _attached_thread(slow, "Which rodent is the largest?")
    run = slow.beta.threads.runs.create(thread_id=thread_id, assistant_id=_searching_assistant(slow))
    with httpx.Client(
        base_url=f"{slow_server.root_url}/_emulator", headers={"Authorization": f"Bearer {slow.api_key}"}
    ) as control:
        advance_clock(control, 60)
    statuses = [slow.beta.threads.runs.retrieve(run.id, thread_id=thread_id).status for _ in range(3)]
    assert statuses == ["queued", "queued", "completed"], "no wait after 60 s: the file is still being processed"
    text, cited = _cited_answer(slow, thread_id)
    assert (text, cited) == ("I found nothing relevant in the files.", [])


# ----------------------------------------------------------------------------------------------------- LlamaIndex


def test_llamaindex_openai_assistant_agent_calls(client: OpenAI, tmp_path: Path) -> None:
    """Exactly the requests of LlamaIndex's `OpenAIAssistantAgent` (llama-index-agent-openai 0.4.12):
    `from_new(..., openai_tools=[{"type": "file_search"}], files=[path])`, `add_message(text, file_ids=[id])`,
    `run_assistant()` and `latest_message`. The package itself cannot be installed with this project's SDK:
    every 0.4.x release needs llama-index-llms-openai, which pins `openai<2`."""
    path = tmp_path / "capybara.txt"
    path.write_text(CAPYBARA)
    with path.open("rb") as handle:  # _process_files
        file_id = client.files.create(file=handle, purpose="assistants").id
    assistant = client.beta.assistants.create(  # from_new
        name="reader",
        instructions="Answer from the files.",
        tools=[{"type": "file_search"}],
        model="gpt-4o",
        top_p=None,
        temperature=None,
    )
    thread_id = client.beta.threads.create().id  # __init__ without a thread id
    client.beta.threads.messages.create(  # add_message(message, file_ids=[file_id]): format_attachments
        thread_id=thread_id,
        role="user",
        content="Which rodent is the largest?",
        attachments=[{"file_id": file_id, "tools": [{"type": "file_search"}]}],
    )
    run = client.beta.threads.runs.create(thread_id=thread_id, assistant_id=assistant.id, instructions=None)
    while run.status in ["queued", "in_progress", "requires_action"]:  # run_assistant
        run = client.beta.threads.runs.retrieve(thread_id=thread_id, run_id=run.id)
        time.sleep(0.1)
    assert run.status == "completed", run.last_error
    latest = list(client.beta.threads.messages.list(thread_id=thread_id, order="desc"))  # latest_message: [0]
    [text] = [part.text for part in latest[0].content if isinstance(part, TextContentBlock)]
    assert text.value.startswith("According to the files: The capybara is the largest living rodent.")
    assert [annotation.type for annotation in text.annotations] == ["file_citation"]
    assert text.annotations[0].file_citation.file_id == file_id  # type: ignore[union-attr]
