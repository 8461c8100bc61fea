"""Files through the official SDK and raw HTTP: multipart upload, retrieve, list (purpose filter), content,
delete; the size limit (413, nothing left on disk) and a large upload streamed to disk, not held in memory."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openai import APIStatusError, BadRequestError, NotFoundError, OpenAI
from openai.types import FileDeleted, FileObject

from tests.extra_server import extra_server
from tests.oracle import check_fields, conforms
from tests.server import RunningServer

SMALL_LIMIT = 1024 * 1024


def stored_files(data_dir: Path) -> set[str]:
    files_dir = data_dir / "files"
    return set(os.listdir(files_dir)) if files_dir.exists() else set()


def test_upload_retrieve_content_delete(
    client: OpenAI, http: httpx.Client, control: httpx.Client, data_dir: Path
) -> None:
    payload = bytes(range(256)) * 10
    before = control.get("/clock").json()["now"]
    created = client.files.create(file=("résumé.bin", payload), purpose="assistants")
    after = control.get("/clock").json()["now"]
    assert created.id.startswith("file-") and len(created.id) == len("file-") + 24
    assert (created.bytes, created.filename, created.purpose, created.status) == (
        2560,
        "résumé.bin",
        "assistants",
        "processed",
    )
    assert before <= created.created_at <= after and created.expires_at is None

    raw = http.get(f"/files/{created.id}").json()
    assert conforms(raw, FileObject, "OpenAIFile") == created
    assert raw["object"] == "file"
    assert client.files.content(created.id).read() == payload
    assert created.id in stored_files(data_dir)

    deleted = http.delete(f"/files/{created.id}").json()
    assert conforms(deleted, FileDeleted, "DeleteFileResponse") == FileDeleted(
        id=created.id, object="file", deleted=True
    )
    assert deleted == {"id": created.id, "object": "file", "deleted": True}, "the real API's quirk: object 'file'"
    expected = {
        "message": f"No such File object: {created.id}",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    for call in (
        lambda: client.files.retrieve(created.id),
        lambda: client.files.content(created.id),
        lambda: client.files.delete(created.id),
    ):
        with pytest.raises(NotFoundError) as missing:
            call()
        assert missing.value.body == expected  # type: ignore[comparison-overlap]
    deadline = time.monotonic() + 5
    while created.id in stored_files(data_dir) and time.monotonic() < deadline:
        time.sleep(0.02)  # the bytes are removed right after the response is sent
    assert created.id not in stored_files(data_dir)


def test_expires_after_sets_expires_at(client: OpenAI) -> None:
    created = client.files.create(
        file=("tmp.txt", b"temporary"), purpose="assistants", expires_after={"anchor": "created_at", "seconds": 3600}
    )
    assert created.expires_at == created.created_at + 3600
    assert client.files.retrieve(created.id).expires_at == created.expires_at


def test_list_with_purpose_filter_and_pages(client: OpenAI, http: httpx.Client) -> None:
    assistants = [client.files.create(file=(f"a{i}.txt", b"a"), purpose="assistants").id for i in range(3)]
    vision = client.files.create(file=("v.png", b"\x89PNG"), purpose="vision").id

    everything = [f.id for f in client.files.list()]
    assert everything == [vision, *assistants[::-1]], "newest first by default"
    assert [f.id for f in client.files.list(purpose="assistants", order="asc")] == assistants
    assert [f.id for f in client.files.list(purpose="vision")] == [vision]
    assert list(client.files.list(purpose="batch")) == []
    assert [f.id for f in client.files.list(limit=1, order="asc")] == [*assistants, vision], "SDK paginates"

    page = http.get("/files", params={"limit": 2, "order": "asc"}).json()
    check_fields(page, "ListFilesResponse")
    for item in page["data"]:
        conforms(item, FileObject, "OpenAIFile")
    assert [item["id"] for item in page["data"]] == assistants[:2]
    assert (page["first_id"], page["last_id"], page["has_more"]) == (assistants[0], assistants[1], True)
    rest = http.get("/files", params={"limit": 2, "order": "asc", "after": assistants[1]}).json()
    assert [item["id"] for item in rest["data"]] == [assistants[2], vision] and rest["has_more"] is False


def test_refused_uploads_leave_nothing_behind(client: OpenAI, http: httpx.Client, data_dir: Path) -> None:
    before = stored_files(data_dir)
    cases = [
        ({"file": ("a.txt", b"x")}, {}, "Missing required parameter: 'purpose'.", "purpose"),
        ({"purpose": (None, b"assistants")}, {}, "Missing required parameter: 'file'.", "file"),
        (
            {"file": ("a.txt", b"x")},
            {"purpose": "homework"},
            "Invalid value: 'homework'. Supported values are: 'assistants', 'batch', 'fine-tune', 'vision', "
            "'user_data', 'evals'.",
            "purpose",
        ),
        (
            {"file": ("a.txt", b"x")},
            {"purpose": "assistants", "colour": "red"},
            "Unrecognized request argument supplied: colour",
            None,
        ),
    ]
    for files, data, message, param in cases:
        response = http.post("/files", files=files, data=data)
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert (error["message"], error["param"], error["type"]) == (message, param, "invalid_request_error")
    not_multipart = http.post("/files", json={"purpose": "assistants"})
    assert not_multipart.status_code == 400 and set(not_multipart.json()) == {"error"}
    assert stored_files(data_dir) == before
    assert list(client.files.list()) == []


@pytest.fixture(scope="module")
def small_limit_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with extra_server(tmp_path_factory.mktemp("small-limit"), EMULATOR_MAX_FILE_BYTES=str(SMALL_LIMIT)) as running:
        yield running


def test_upload_above_the_limit_is_413_and_leaves_nothing(small_limit_server: RunningServer) -> None:
    client = OpenAI(base_url=small_limit_server.base_url, api_key="sk-small-limit", max_retries=0)
    expected = {
        "message": f"File is too large: the maximum size is {SMALL_LIMIT} bytes.",
        "type": "invalid_request_error",
        "param": "file",
        "code": "file_too_large",
    }
    # 2 MB is refused from its Content-Length; 1 MB + 1 byte only once the stream passes the limit.
    for size in (2 * 1024 * 1024, SMALL_LIMIT + 1):
        with pytest.raises(APIStatusError) as too_large:
            client.files.create(file=("big.bin", b"z" * size), purpose="assistants")
        assert too_large.value.status_code == 413
        assert too_large.value.body == expected  # type: ignore[comparison-overlap]
        assert too_large.value.response.headers["content-type"] == "application/json"
        assert stored_files(small_limit_server.data_dir) == set(), f"{size} bytes left something on disk"
    assert list(client.files.list()) == []

    exactly = client.files.create(file=("edge.bin", b"e" * SMALL_LIMIT), purpose="assistants")
    assert exactly.bytes == SMALL_LIMIT, "the limit itself is allowed"
    assert client.files.content(exactly.id).read() == b"e" * SMALL_LIMIT
    assert [f.id for f in client.files.list()] == [exactly.id]
    assert stored_files(small_limit_server.data_dir) == {exactly.id}


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_large_upload_is_streamed_to_disk(
    server: RunningServer, api_key: str, tmp_path: Path, data_dir: Path
) -> None:
    size = 50 * 1024 * 1024
    source = tmp_path / "large.bin"
    with open(source, "wb") as out:
        chunk = bytes(range(256)) * 4096
        for _ in range(size // len(chunk)):
            out.write(chunk)
    pid = server.process.pid
    with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {api_key}"}) as http:
        http.get("/files")  # warm up the code path before measuring
        baseline = _rss_kib(pid)
        peak = baseline
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, _rss_kib(pid))
                time.sleep(0.005)

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            with open(source, "rb") as stream:
                response = http.post(
                    "/files", files={"file": ("large.bin", stream)}, data={"purpose": "assistants"}, timeout=120
                )
        finally:
            done.set()
            sampler.join()
        after = _rss_kib(pid)
        assert response.status_code == 200, response.text
        created = conforms(response.json(), FileObject, "OpenAIFile")
        assert created.bytes == size
        assert (data_dir / "files" / created.id).stat().st_size == size
        growth_mib = (max(peak, after) - baseline) / 1024
        assert growth_mib < 25, f"server RSS grew by {growth_mib:.1f} MiB for a 50 MiB upload"
        assert http.delete(f"/files/{created.id}").json()["deleted"] is True


def test_files_need_no_beta_header_but_accept_it(server: RunningServer, api_key: str) -> None:
    auth = {"Authorization": f"Bearer {api_key}"}
    plain = httpx.post(
        f"{server.base_url}/files", headers=auth, files={"file": ("p.txt", b"p")}, data={"purpose": "user_data"}
    )
    assert plain.status_code == 200, plain.text
    assert conforms(plain.json(), FileObject, "OpenAIFile").purpose == "user_data"
    with_beta = httpx.get(
        f"{server.base_url}/files/{plain.json()['id']}", headers={**auth, "OpenAI-Beta": "assistants=v2"}
    )
    assert with_beta.status_code == 200 and with_beta.json() == plain.json()


def test_bad_list_parameters(client: OpenAI, http: httpx.Client) -> None:
    response = http.get("/files", params={"order": "sideways"})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "order"
    with pytest.raises(BadRequestError):
        client.files.list(limit=0)


def test_an_aborted_upload_leaves_nothing_behind(server: RunningServer, api_key: str, data_dir: Path) -> None:
    """The client goes away half-way through a large upload: the partial bytes are removed."""
    before = stored_files(data_dir)
    boundary = "emulatorboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nassistants\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="cut.bin"\r\n\r\n'
    ).encode()
    host, port = server.root_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as connection:
        connection.sendall(
            (
                f"POST /v1/files HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {api_key}\r\n"
                f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {len(head) + 10_000_000}"
                "\r\n\r\n"
            ).encode()
            + head
            + b"a" * 2_000_000
        )
        deadline = time.monotonic() + 5
        while stored_files(data_dir) == before and time.monotonic() < deadline:
            time.sleep(0.01)
        assert stored_files(data_dir) != before, "the upload was being written"
    deadline = time.monotonic() + 5
    while stored_files(data_dir) != before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert stored_files(data_dir) == before
    listed = httpx.get(f"{server.base_url}/files", headers={"Authorization": f"Bearer {api_key}"}).json()
    assert listed["data"] == []
