"""`store.bulk.insert_copies`: copies of one row with new ids, every other column as the database holds it.

On SQLite on the event-loop lane and in a worker thread; with `EMULATOR_TEST_DATABASE_URL` set, on a fresh
PostgreSQL database.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import NoResultFound
from sqlalchemy.orm import Session

from emulator.store import bulk, messages, records, rows, threads
from emulator.tables import MessageRow
from tests.units_of_work import Unit


def _template(session: Session) -> str:
    threads.create(session, tenant="t", thread_id="thread_1", now=100, tool_resources={}, metadata={})
    message = messages.create(
        session, tenant="t", message_id="msg_template", thread_id="thread_1", now=100, role="user",
        content=[{"type": "text", "text": {"value": "hello", "annotations": []}}], attachments=[],
        metadata={"k": "v"},
    )
    message.status = "incomplete"  # a change not yet written when the copies are made
    return message.id


def _stored(session: Session) -> list[dict[str, Any]]:
    found = session.execute(select(MessageRow).order_by(MessageRow.seq)).scalars().all()
    return [{c.key: getattr(row, c.key) for c in MessageRow.__mapper__.column_attrs} for row in found]


def test_copies_take_every_column_but_id_and_seq(unit: Unit) -> None:
    def work(session: Session) -> int:
        template_id = _template(session)
        return bulk.insert_copies(session, messages.MESSAGES, template_id, ["msg_a", "msg_b", "msg_c"])

    assert unit(work) == 3
    stored = unit(_stored)
    assert [row["id"] for row in stored] == ["msg_template", "msg_a", "msg_b", "msg_c"]
    assert len({row["seq"] for row in stored}) == 4
    template = {k: v for k, v in stored[0].items() if k not in ("id", "seq")}
    assert template["status"] == "incomplete" and template["incomplete_details"] is None
    for row in stored[1:]:
        assert {k: v for k, v in row.items() if k not in ("id", "seq")} == template


def test_nothing_to_copy(unit: Unit) -> None:
    assert unit(lambda session: bulk.insert_copies(session, messages.MESSAGES, "msg_none", [])) == 0
    with pytest.raises(NoResultFound):
        unit(lambda session: bulk.insert_copies(session, messages.MESSAGES, "msg_none", ["msg_a"]))
    with pytest.raises(ValueError, match="id alone"):
        unit(lambda session: bulk.insert_copies(session, records.Table(rows.VectorStoreFile), "file-1", ["file-2"]))
