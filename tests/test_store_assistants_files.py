"""`store.assistants` and `store.files`: records loaded, changed by attribute sets and listed, in every mode of
`tests.test_store_unit_of_work` (the SQLite lane, a worker thread, PostgreSQL)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from emulator.errors import InvalidRequest, NotFound
from emulator.store import assistants, files
from emulator.store.pagination import PageRequest
from emulator.store.rows import Assistant, File
from tests.units_of_work import Unit

_ASSISTANT: dict[str, Any] = dict(
    name="a", description=None, model="gpt-4o", instructions="be brief", tools=[], tool_resources={},
    metadata_={}, temperature=1.0, top_p=1.0, response_format="auto", reasoning_effort=None,
)


def _assistant(session: Session, assistant_id: str, tenant: str = "t") -> Assistant:
    return assistants.create(session, tenant=tenant, assistant_id=assistant_id, created_at=100, **_ASSISTANT)


def test_an_assistant_is_one_record_changed_by_attribute_sets(unit: Unit[Any]) -> None:
    def create_and_change(session: Session) -> None:
        created = _assistant(session, "asst_1")
        assert assistants.get(session, "t", "asst_1") is created
        created.name = "renamed"
        created.metadata_ = {"k": "v"}
        listed = assistants.list_page(session, "t", PageRequest(limit=10, order="asc")).rows
        assert [row.name for row in listed] == ["renamed"] and listed[0] is created

    unit(create_and_change)
    stored = unit(lambda session: assistants.get(session, "t", "asst_1"))
    assert (stored.name, stored.metadata_, stored.instructions) == ("renamed", {"k": "v"}, "be brief")
    with pytest.raises(NotFound):
        unit(lambda session: assistants.get(session, "other", "asst_1"))


def test_assistants_list_by_tenant_in_order_and_remove(unit: Unit[Any]) -> None:
    def create(session: Session) -> None:
        for index in range(3):
            _assistant(session, f"asst_{index}")
        _assistant(session, "asst_other", tenant="other")

    unit(create)
    page = unit(lambda session: assistants.list_page(session, "t", PageRequest(limit=2, order="desc", after="asst_2")))
    assert [row.id for row in page.rows] == ["asst_1", "asst_0"] and not page.has_more
    unit(lambda session: assistants.remove(session, "t", "asst_1"))
    with pytest.raises(NotFound):
        unit(lambda session: assistants.remove(session, "t", "asst_1"))
    page = unit(lambda session: assistants.list_page(session, "t", PageRequest(limit=10, order="asc")))
    assert [row.id for row in page.rows] == ["asst_0", "asst_2"]


def _file(session: Session, file_id: str, *, tenant: str = "t", purpose: str = "assistants",
          expires_at: int | None = None) -> File:
    return files.create(
        session, tenant=tenant, file_id=file_id, now=100, size=3, filename=f"{file_id}.txt", purpose=purpose,
        expires_at=expires_at, storage_path=Path("/nowhere") / file_id,
    )


def test_an_expired_file_is_gone_to_every_reader(unit: Unit[Any]) -> None:
    def create(session: Session) -> None:
        _file(session, "file_live")
        _file(session, "file_vision", purpose="vision", expires_at=1_000)
        _file(session, "file_expired", expires_at=500)
        _file(session, "file_theirs", tenant="other")

    unit(create)
    now = 600
    wanted = ["file_live", "file_vision", "file_expired", "file_theirs", "file_live"]
    found = unit(lambda session: files.live(session, "t", wanted, now=now))
    assert sorted(found) == ["file_live", "file_vision"] and found["file_live"].storage_path == "/nowhere/file_live"
    assert list(unit(lambda session: files.live(session, "t", ["file_expired"], now=now))) == []
    with pytest.raises(NotFound):
        unit(lambda session: files.get(session, "t", "file_expired", now=now))
    with pytest.raises(InvalidRequest, match="file_expired"):
        unit(lambda session: files.require_existing(session, "t", wanted, param="file_ids", now=now))
    listed = unit(lambda session: files.list_page(session, "t", PageRequest(limit=10, order="asc"), None, now=now))
    assert [row.id for row in listed.rows] == ["file_live", "file_vision"]
    vision = unit(lambda session: files.list_page(session, "t", PageRequest(limit=10, order="asc"), "vision", now=now))
    assert [row.id for row in vision.rows] == ["file_vision"]


def test_a_removed_file_is_gone(unit: Unit[Any]) -> None:
    unit(lambda session: _file(session, "file_1"))
    unit(lambda session: files.remove(session, files.get(session, "t", "file_1", now=100)))
    assert unit(lambda session: files.live(session, "t", ["file_1", "file_2"], now=100)) == {}
