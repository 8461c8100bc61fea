"""The record classes (`store.rows`) say what the tables (`tables`) hold, and a record class that does not is
refused when it is made."""

from __future__ import annotations

import typing
from typing import Any

import pytest
from sqlalchemy import inspect
from sqlalchemy.orm import Mapped

from emulator import tables
from emulator.store import rows
from emulator.store.records import Record

RECORD_CLASSES = [
    value for value in vars(rows).values()
    if isinstance(value, type) and issubclass(value, Record) and value is not Record
]


def _column_types(mapped: Any) -> dict[str, Any]:
    hints = typing.get_type_hints(mapped)
    out = {}
    for attribute in inspect(mapped).column_attrs:
        if attribute.deferred:
            continue
        hint = hints[attribute.key]
        assert typing.get_origin(hint) is Mapped, attribute.key
        out[attribute.key] = typing.get_args(hint)[0]
    return out


def test_every_table_has_a_record_class() -> None:
    mapped = {cls.mapped for cls in RECORD_CLASSES}
    every_table = {mapper.class_ for mapper in tables.Base.registry.mappers}
    assert mapped == every_table


@pytest.mark.parametrize("record", RECORD_CLASSES, ids=lambda cls: cls.__name__)
def test_record_attributes_have_the_column_types(record: type[Record]) -> None:
    declared = typing.get_type_hints(record)
    for name in ("mapped", "key_names", "column_names"):
        declared.pop(name)
    assert declared == _column_types(record.mapped)


def test_a_record_class_unlike_its_table_is_refused() -> None:
    with pytest.raises(TypeError, match=r"not declared \['offset_seconds'\], declared but no column \[\]"):

        class _MissingAColumn(Record, mapped=tables.TenantClockRow):
            tenant: str

    with pytest.raises(TypeError, match=r"not declared \[\], declared but no column \['made_up'\]"):

        class _AColumnTooMany(Record, mapped=tables.TenantClockRow):
            tenant: str
            offset_seconds: int
            made_up: int
