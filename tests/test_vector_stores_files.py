"""Vector store files and file batches through the SDK: helpers, parsing of real documents, failures, chunking,
exact counts, cancel, and progression under `polls:N`."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openai import BadRequestError, NotFoundError, OpenAI
from openai.types.vector_stores import VectorStoreFile, VectorStoreFileBatch, VectorStoreFileDeleted

from emulator import tokens
from emulator.ingest.chunking import CHUNK_ENCODING
from tests.extra_server import extra_server
from tests.oracle import check_fields, conforms
from tests.server import RunningServer
from tests.vector_stores_support import docx_bytes, pdf_bytes, pptx_bytes, upload

COUNT_KEYS = ("in_progress", "completed", "failed", "cancelled", "total")


def counts(in_progress: int = 0, completed: int = 0, failed: int = 0, cancelled: int = 0) -> dict[str, int]:
    return dict(
        zip(
            COUNT_KEYS,
            (in_progress, completed, failed, cancelled, in_progress + completed + failed + cancelled),
            strict=True,
        )
    )


def test_upload_and_poll_then_every_file_endpoint(client: OpenAI, http: httpx.Client) -> None:
    store = client.vector_stores.create(name="files")
    text = "The quick brown fox jumps over the lazy dog.\n"
    done = client.vector_stores.files.upload_and_poll(
        vector_store_id=store.id, file=("fox.txt", io.BytesIO(text.encode())), attributes={"lang": "en", "rank": 3}
    )
    assert done.status == "completed" and done.last_error is None and done.id.startswith("file-")
    assert done.usage_bytes == len(text.encode()) and done.attributes == {"lang": "en", "rank": 3}
    assert done.chunking_strategy is not None and done.chunking_strategy.model_dump() == {
        "type": "static",
        "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400},
    }
    raw = http.get(f"/vector_stores/{store.id}/files/{done.id}")
    assert raw.headers["openai-poll-after-ms"].isdigit()
    conforms(raw.json(), VectorStoreFile, "VectorStoreFileObject")

    relabelled = client.vector_stores.files.update(done.id, vector_store_id=store.id, attributes={"lang": "fr"})
    assert relabelled.attributes == {"lang": "fr"}
    content = http.get(f"/vector_stores/{store.id}/files/{done.id}/content").json()
    check_fields(content, "VectorStoreFileContentResponse")
    assert content["data"] == [{"type": "text", "text": text}] and content["has_more"] is False
    sdk_content = client.vector_stores.files.content(done.id, vector_store_id=store.id)
    assert "".join(part.text or "" for part in sdk_content) == text

    listed = http.get(f"/vector_stores/{store.id}/files").json()
    check_fields(listed, "ListVectorStoreFilesResponse")
    assert [item["id"] for item in listed["data"]] == [done.id]

    deleted = client.vector_stores.files.delete(done.id, vector_store_id=store.id)
    assert deleted == VectorStoreFileDeleted(id=done.id, object="vector_store.file.deleted", deleted=True)
    assert client.files.retrieve(done.id).id == done.id, "detaching keeps the uploaded file"
    assert client.vector_stores.retrieve(store.id).file_counts.total == 0
    assert client.vector_stores.retrieve(store.id).usage_bytes == 0
    with pytest.raises(NotFoundError):
        client.vector_stores.files.retrieve(done.id, vector_store_id=store.id)


def test_create_and_poll_an_uploaded_file(client: OpenAI) -> None:
    store = client.vector_stores.create()
    file_id = upload(client, "guide.md", "# Guide\n\nStep one: breathe.")
    created = client.vector_stores.files.create(vector_store_id=store.id, file_id=file_id)
    assert created.status == "in_progress"
    done = client.vector_stores.files.create_and_poll(file_id, vector_store_id=store.id)
    assert done.status == "completed"


def test_real_documents_are_parsed(client: OpenAI) -> None:
    store = client.vector_stores.create()
    documents = {
        "report.pdf": pdf_bytes(["Quarterly revenue grew by twelve percent.", "The aardvark project shipped."]),
        "memo.docx": docx_bytes(["Memo about the wombat initiative."], table=[["cell alpha", "cell omega"]]),
        "page.html": b"<html><head><style>p{}</style><script>var hidden=1;</script></head>"
        b"<body><h1>Title</h1><p>Visible &amp; kept</p></body></html>",
        "data.json": b'{"animal": "quokka"}',
        "script.py": b"def narwhal():\n    return 'tusk'\n",
        "deck.pptx": pptx_bytes("Pangolin roadmap", "Scales are keratin"),
    }
    ids = {name: upload(client, name, data) for name, data in documents.items()}
    batch = client.vector_stores.file_batches.create_and_poll(vector_store_id=store.id, file_ids=list(ids.values()))
    assert batch.file_counts.model_dump() == counts(completed=6)

    def text_of(name: str) -> str:
        return "".join(
            part.text or "" for part in client.vector_stores.files.content(ids[name], vector_store_id=store.id)
        )

    pdf = text_of("report.pdf")
    assert "Quarterly revenue grew by twelve percent." in pdf and "The aardvark project shipped." in pdf
    docx = text_of("memo.docx")
    assert "Memo about the wombat initiative." in docx and "cell alpha" in docx and "cell omega" in docx
    html = text_of("page.html")
    assert "Title" in html and "Visible & kept" in html and "hidden" not in html and "<" not in html
    assert text_of("data.json") == '{"animal": "quokka"}'
    assert "narwhal" in text_of("script.py")
    assert "Pangolin roadmap" in text_of("deck.pptx") and "Scales are keratin" in text_of("deck.pptx")
    hits = client.vector_stores.search(store.id, query="aardvark")
    assert [hit.filename for hit in hits.data] == ["report.pdf"]


@pytest.mark.parametrize(
    ("name", "data", "code"),
    [
        ("photo.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "unsupported_file"),
        ("clip.mp4", b"\x00\x00\x00\x18ftypmp42", "unsupported_file"),
        ("archive.zip", b"PK\x03\x04", "unsupported_file"),
        ("empty.txt", b"", "invalid_file"),
        ("blank.md", b"   \n\t\n", "invalid_file"),
        ("broken.pdf", b"%PDF-1.4 this is not really a pdf", "invalid_file"),
        ("broken.docx", b"not a zip at all", "invalid_file"),
        ("latin1.txt", "caf\u00e9".encode("latin-1"), "invalid_file"),
    ],
)
def test_unusable_files_fail_with_last_error(client: OpenAI, name: str, data: bytes, code: str) -> None:
    store = client.vector_stores.create()
    failed = client.vector_stores.files.upload_and_poll(vector_store_id=store.id, file=(name, io.BytesIO(data)))
    assert failed.status == "failed" and failed.usage_bytes == 0
    assert failed.last_error is not None and failed.last_error.code == code and failed.last_error.message
    after = client.vector_stores.retrieve(store.id)
    assert after.file_counts.model_dump() == counts(failed=1) and after.status == "completed"
    assert (
        "".join(part.text or "" for part in client.vector_stores.files.content(failed.id, vector_store_id=store.id))
        == ""
    )


def test_static_chunking_cuts_token_windows(client: OpenAI) -> None:
    text = "".join(f"Sentence number {i} talks about topic{i % 7} and the common thread. " for i in range(200))
    store = client.vector_stores.create()
    file_id = upload(client, "long.txt", text)
    done = client.vector_stores.files.create_and_poll(
        file_id,
        vector_store_id=store.id,
        chunking_strategy={"type": "static", "static": {"max_chunk_size_tokens": 120, "chunk_overlap_tokens": 60}},
    )
    expected = tokens.split_into_chunks(text, CHUNK_ENCODING, 120, 60)
    assert len(expected) == len(tokens.token_windows(tokens.count(text, CHUNK_ENCODING), 120, 60)) > 20
    assert done.usage_bytes == sum(len(chunk.encode()) for chunk, _ in expected)
    assert done.chunking_strategy is not None and done.chunking_strategy.model_dump() == {
        "type": "static",
        "static": {"max_chunk_size_tokens": 120, "chunk_overlap_tokens": 60},
    }
    found = client.vector_stores.search(store.id, query="common thread", max_num_results=50)
    assert sorted(hit.content[0].text for hit in found.data) == sorted(chunk for chunk, _ in expected[:50])


def test_auto_chunking_is_800_by_400(client: OpenAI) -> None:
    text = " ".join(f"word{i}" for i in range(3000))
    store = client.vector_stores.create(chunking_strategy={"type": "auto"}, file_ids=[upload(client, "w.txt", text)])
    [done] = list(client.vector_stores.files.list(vector_store_id=store.id))
    expected = tokens.split_into_chunks(text, CHUNK_ENCODING, 800, 400)
    assert len(expected) > 3
    assert done.usage_bytes == sum(len(chunk.encode()) for chunk, _ in expected)


@pytest.mark.parametrize(
    ("static", "param", "message"),
    [
        (
            {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 101},
            "chunking_strategy.static.chunk_overlap_tokens",
            "Invalid 'chunk_overlap_tokens': chunk_overlap_tokens must not exceed half of max_chunk_size_tokens. "
            "Expected a value <= 100, but got 101 instead.",
        ),
        (
            {"max_chunk_size_tokens": 4097, "chunk_overlap_tokens": 0},
            "chunking_strategy.static.max_chunk_size_tokens",
            "Invalid 'chunking_strategy.static.max_chunk_size_tokens': integer above maximum value. Expected a value "
            "<= 4096, but got 4097 instead.",
        ),
        (
            {"max_chunk_size_tokens": 99, "chunk_overlap_tokens": 0},
            "chunking_strategy.static.max_chunk_size_tokens",
            "Invalid 'chunking_strategy.static.max_chunk_size_tokens': integer below minimum value. Expected a value "
            ">= 100, but got 99 instead.",
        ),
        (
            {"max_chunk_size_tokens": 400},
            "chunking_strategy.static.chunk_overlap_tokens",
            "Missing required parameter: 'chunking_strategy.static.chunk_overlap_tokens'.",
        ),
    ],
)
def test_static_chunking_is_validated(
    client: OpenAI, http: httpx.Client, static: dict, param: str, message: str
) -> None:
    store = client.vector_stores.create()
    file_id = upload(client, "a.txt", "text")
    response = http.post(
        f"/vector_stores/{store.id}/files",
        json={"file_id": file_id, "chunking_strategy": {"type": "static", "static": static}},
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["param"], error["message"]) == (param, message)
    assert client.vector_stores.retrieve(store.id).file_counts.total == 0, "a refused request attaches nothing"


def test_half_overlap_is_allowed(client: OpenAI) -> None:
    store = client.vector_stores.create()
    done = client.vector_stores.files.create_and_poll(
        upload(client, "a.txt", "text " * 500),
        vector_store_id=store.id,
        chunking_strategy={"type": "static", "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 50}},
    )
    assert done.status == "completed"


def test_attach_errors(client: OpenAI, http: httpx.Client) -> None:
    store = client.vector_stores.create()
    unknown = http.post(f"/vector_stores/{store.id}/files", json={"file_id": "file-missing"})
    assert unknown.status_code == 400
    assert unknown.json()["error"]["message"] == "Invalid 'file_id': no file found with id 'file-missing'."
    missing_store = http.post("/vector_stores/vs_nope/files", json={"file_id": upload(client, "a.txt", "x")})
    assert missing_store.status_code == 404
    assert missing_store.json()["error"]["message"] == "No vector store found with id 'vs_nope'."
    bad_attributes = http.post(
        f"/vector_stores/{store.id}/files",
        json={"file_id": upload(client, "b.txt", "x"), "attributes": {f"k{i}": i for i in range(17)}},
    )
    assert bad_attributes.status_code == 400 and bad_attributes.json()["error"]["param"] == "attributes"
    bad_filter = http.get(f"/vector_stores/{store.id}/files", params={"filter": "done"})
    assert bad_filter.status_code == 400 and bad_filter.json()["error"]["param"] == "filter"


def test_list_filter_by_status_and_pagination(client: OpenAI, http: httpx.Client) -> None:
    store = client.vector_stores.create()
    good = [upload(client, f"g{i}.txt", f"good file {i}") for i in range(5)]
    bad = [upload(client, f"b{i}.png", b"\x89PNG") for i in range(2)]
    batch = client.vector_stores.file_batches.create_and_poll(vector_store_id=store.id, file_ids=good + bad)
    assert batch.status == "completed" and batch.file_counts.model_dump() == counts(completed=5, failed=2)
    completed = [f.id for f in client.vector_stores.files.list(vector_store_id=store.id, filter="completed", limit=2)]
    assert sorted(completed) == sorted(good)
    failed = [f.id for f in client.vector_stores.files.list(vector_store_id=store.id, filter="failed")]
    assert sorted(failed) == sorted(bad)
    assert list(client.vector_stores.files.list(vector_store_id=store.id, filter="in_progress")) == []
    ascending = [f.id for f in client.vector_stores.files.list(vector_store_id=store.id, order="asc", limit=3)]
    assert ascending == good + bad
    page = http.get(f"/vector_stores/{store.id}/files", params={"order": "asc", "limit": 2, "after": good[1]}).json()
    assert [item["id"] for item in page["data"]] == good[2:4] and page["has_more"] is True


def test_batch_upload_and_poll_counts_exact(client: OpenAI, http: httpx.Client) -> None:
    store = client.vector_stores.create()
    batch = client.vector_stores.file_batches.upload_and_poll(
        vector_store_id=store.id,
        files=[(f"doc{i}.txt", io.BytesIO(f"document {i} about lemurs".encode())) for i in range(4)]
        + [("pic.jpg", io.BytesIO(b"\xff\xd8\xff"))],
    )
    assert batch.id.startswith("vsfb_") and batch.status == "completed"
    assert batch.file_counts.model_dump() == counts(completed=4, failed=1)
    raw = http.get(f"/vector_stores/{store.id}/file_batches/{batch.id}")
    assert raw.headers["openai-poll-after-ms"].isdigit()
    conforms(raw.json(), VectorStoreFileBatch, "VectorStoreFileBatchObject")
    assert raw.json()["object"] == "vector_store.files_batch"
    listed = list(client.vector_stores.file_batches.list_files(batch.id, vector_store_id=store.id))
    assert len(listed) == 5 and {f.status for f in listed} == {"completed", "failed"}
    failed = list(client.vector_stores.file_batches.list_files(batch.id, vector_store_id=store.id, filter="failed"))
    assert len(failed) == 1 and failed[0].last_error is not None
    assert client.vector_stores.retrieve(store.id).file_counts.model_dump() == counts(completed=4, failed=1)


def test_batch_files_carry_their_own_attributes(client: OpenAI) -> None:
    store = client.vector_stores.create()
    a, b = upload(client, "a.txt", "alpha text"), upload(client, "b.txt", "beta text")
    batch = client.vector_stores.file_batches.create_and_poll(
        vector_store_id=store.id,
        files=[
            {"file_id": a, "attributes": {"team": "red"}},
            {
                "file_id": b,
                "attributes": {"team": "blue"},
                "chunking_strategy": {
                    "type": "static",
                    "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 0},
                },
            },
        ],
    )
    assert batch.file_counts.completed == 2
    assert client.vector_stores.files.retrieve(a, vector_store_id=store.id).attributes == {"team": "red"}
    second = client.vector_stores.files.retrieve(b, vector_store_id=store.id)
    assert second.attributes == {"team": "blue"}
    assert second.chunking_strategy is not None and second.chunking_strategy.static.max_chunk_size_tokens == 100  # type: ignore[union-attr]


def test_shared_attributes_apply_to_every_file_id(client: OpenAI) -> None:
    store = client.vector_stores.create()
    ids = [upload(client, f"{i}.txt", f"text {i}") for i in range(3)]
    client.vector_stores.file_batches.create_and_poll(vector_store_id=store.id, file_ids=ids, attributes={"year": 2024})
    assert {f.attributes["year"] for f in client.vector_stores.files.list(vector_store_id=store.id)} == {2024}  # type: ignore[index]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"file_ids": []}, "file_ids"),
        ({"file_ids": [f"file-{i}" for i in range(2001)]}, "file_ids"),
        ({"files": []}, "files"),
        ({}, "file_ids"),
        ({"file_ids": ["file-a"], "files": [{"file_id": "file-a"}]}, "files"),
        ({"file_ids": ["file-unknown"]}, "file_ids"),
    ],
)
def test_batch_request_errors(client: OpenAI, http: httpx.Client, body: dict, param: str | None) -> None:
    store = client.vector_stores.create()
    response = http.post(f"/vector_stores/{store.id}/file_batches", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


def test_batch_size_limit_message(client: OpenAI, http: httpx.Client) -> None:
    store = client.vector_stores.create()
    response = http.post(
        f"/vector_stores/{store.id}/file_batches", json={"file_ids": [f"file-{i}" for i in range(2001)]}
    )
    assert response.json()["error"]["message"] == (
        "Invalid 'file_ids': array too long. Expected an array with maximum length 2000, but got an array with "
        "length 2001 instead."
    )


def test_cancel_stops_pending_files(client: OpenAI) -> None:
    store = client.vector_stores.create()
    ids = [upload(client, f"{i}.txt", f"pending text {i}") for i in range(3)]
    batch = client.vector_stores.file_batches.create(vector_store_id=store.id, file_ids=ids)
    assert batch.status == "in_progress" and batch.file_counts.model_dump() == counts(in_progress=3)
    cancelled = client.vector_stores.file_batches.cancel(batch.id, vector_store_id=store.id)
    assert cancelled.status == "cancelled" and cancelled.file_counts.model_dump() == counts(cancelled=3)
    again = client.vector_stores.file_batches.poll(batch.id, vector_store_id=store.id)
    assert again.status == "cancelled" and again.file_counts.model_dump() == counts(cancelled=3)
    assert {f.status for f in client.vector_stores.files.list(vector_store_id=store.id)} == {"cancelled"}
    assert client.vector_stores.retrieve(store.id).file_counts.model_dump() == counts(cancelled=3)
    assert client.vector_stores.search(store.id, query="pending").data == [], "cancelled files are not searchable"
    with pytest.raises(BadRequestError):
        client.vector_stores.file_batches.cancel(batch.id, vector_store_id=store.id)


def test_cancel_of_a_finished_batch_is_refused(client: OpenAI) -> None:
    store = client.vector_stores.create()
    batch = client.vector_stores.file_batches.create_and_poll(
        vector_store_id=store.id, file_ids=[upload(client, "a.txt", "done")]
    )
    with pytest.raises(BadRequestError) as refused:
        client.vector_stores.file_batches.cancel(batch.id, vector_store_id=store.id)
    assert "completed" in refused.value.message
    with pytest.raises(NotFoundError):
        client.vector_stores.file_batches.retrieve("vsfb_missing", vector_store_id=store.id)


def test_reattaching_a_file_processes_it_again(client: OpenAI) -> None:
    store = client.vector_stores.create()
    file_id = upload(client, "a.txt", "reattach me")
    client.vector_stores.files.create_and_poll(file_id, vector_store_id=store.id, attributes={"v": 1})
    again = client.vector_stores.files.create_and_poll(file_id, vector_store_id=store.id, attributes={"v": 2})
    assert again.attributes == {"v": 2}
    after = client.vector_stores.retrieve(store.id)
    assert after.file_counts.model_dump() == counts(completed=1)
    assert len(client.vector_stores.search(store.id, query="reattach").data) == 1


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server whose files and batches finish on their third observation (`polls:3`)."""
    data_dir: Path = tmp_path_factory.mktemp("vs-polls")
    with extra_server(data_dir, EMULATOR_RUN_PROGRESSION="polls:3", EMULATOR_POLL_AFTER_MS="10") as running:
        yield running


def test_polls_progression_for_files_and_batches(slow_server: RunningServer) -> None:
    client = OpenAI(base_url=slow_server.base_url, api_key="sk-vs-polls", max_retries=0)
    store = client.vector_stores.create()
    file_id = upload(client, "a.txt", "slow file")
    created = client.vector_stores.files.create(vector_store_id=store.id, file_id=file_id)
    seen = [client.vector_stores.files.retrieve(file_id, vector_store_id=store.id).status for _ in range(3)]
    assert (created.status, seen) == ("in_progress", ["in_progress", "in_progress", "completed"])

    ids = [upload(client, f"{i}.txt", f"slow batch {i}") for i in range(3)]
    batch = client.vector_stores.file_batches.create(vector_store_id=store.id, file_ids=ids)
    first = client.vector_stores.file_batches.retrieve(batch.id, vector_store_id=store.id)
    assert first.status == "in_progress" and first.file_counts.model_dump() == counts(in_progress=3)
    done = client.vector_stores.file_batches.poll(batch.id, vector_store_id=store.id)
    assert done.status == "completed" and done.file_counts.model_dump() == counts(completed=3)

    uploaded = client.vector_stores.files.upload_and_poll(
        vector_store_id=store.id, file=("b.txt", io.BytesIO(b"polled"))
    )
    assert uploaded.status == "completed"
    assert client.vector_stores.retrieve(store.id).file_counts.model_dump() == counts(completed=5)


def test_deleting_a_file_removes_it_from_every_vector_store(client: OpenAI) -> None:
    """The API reference: 'Delete a file and remove it from all vector stores.'"""
    upload = client.files.create(file=("zebra.txt", b"Zebras have black and white stripes."), purpose="assistants")
    stores = [client.vector_stores.create(name=f"s{index}", file_ids=[upload.id]) for index in range(2)]
    for store in stores:
        assert [hit.file_id for hit in client.vector_stores.search(store.id, query="zebras stripes")] == [upload.id]
    client.files.delete(upload.id)
    for store in stores:
        assert list(client.vector_stores.files.list(store.id)) == []
        assert list(client.vector_stores.search(store.id, query="zebras stripes")) == []
        assert client.vector_stores.retrieve(store.id).file_counts.total == 0


def test_attribute_limits_are_refused_with_the_real_texts(client: OpenAI) -> None:
    from emulator import limits

    store = client.vector_stores.create(name="attrs")
    upload = client.files.create(file=("a.txt", b"alpha"), purpose="assistants")
    pairs, key_chars, value_chars = (
        limits.VECTOR_STORE_FILE_ATTRIBUTES_MAX_PAIRS,
        limits.VECTOR_STORE_FILE_ATTRIBUTE_KEY_MAX_CHARS,
        limits.VECTOR_STORE_FILE_ATTRIBUTE_VALUE_MAX_CHARS,
    )
    cases = [
        (
            {f"k{index}": "v" for index in range(pairs + 1)},
            f"Invalid 'attributes': too many properties. Expected an object with at most {pairs} properties, "
            f"but got an object with {pairs + 1} properties instead.",
        ),
        (
            {"k" * (key_chars + 1): "v"},
            f"Invalid 'attributes': attribute key '{'k' * (key_chars + 1)}' is too long. Expected a key with maximum "
            f"length {key_chars}, but got a key with length {key_chars + 1} instead.",
        ),
        (
            {"k": "v" * (value_chars + 1)},
            f"Invalid 'attributes': attribute value for key 'k' is too long. Expected a value with maximum length "
            f"{value_chars}, but got a value with length {value_chars + 1} instead.",
        ),
    ]
    for attributes, message in cases:
        with pytest.raises(BadRequestError) as refused:
            client.vector_stores.files.create(vector_store_id=store.id, file_id=upload.id, attributes=attributes)
        assert refused.value.body["message"] == message  # type: ignore[index]
    assert list(client.vector_stores.files.list(store.id)) == [], "a refused attach adds nothing"
    accepted = {f"k{index}": "v" * value_chars for index in range(pairs)}
    attached = client.vector_stores.files.create(vector_store_id=store.id, file_id=upload.id, attributes=accepted)
    assert attached.attributes == accepted
