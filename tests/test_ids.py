"""Ids: the real API's shapes, and a seed that makes the whole sequence (request ids included) reproducible."""

from __future__ import annotations

import re

from emulator.ids import PREFIXES, IdFactory


def _sequence(factory: IdFactory) -> list[str]:
    return [factory.new(kind) for kind in PREFIXES if kind != "request"] + [factory.request_id() for _ in range(3)]


def test_seeded_factories_repeat_the_same_sequence() -> None:
    assert _sequence(IdFactory(7)) == _sequence(IdFactory(7))
    assert _sequence(IdFactory(7)) != _sequence(IdFactory(8))


def test_unseeded_ids_differ_and_keep_their_shapes() -> None:
    first, second = _sequence(IdFactory()), _sequence(IdFactory())
    assert not set(first) & set(second)
    for kind, prefix in PREFIXES.items():
        if kind != "request":
            assert re.fullmatch(re.escape(prefix) + r"[A-Za-z0-9]{24}", IdFactory().new(kind))
    assert re.fullmatch(r"req_[0-9a-f]{32}", IdFactory(3).request_id())
    assert re.fullmatch(r"req_[0-9a-f]{32}", IdFactory().request_id())


def test_request_ids_do_not_move_the_sequence_of_object_ids() -> None:
    """A client that reads more often (its polls draw request ids) gets the same object ids."""
    quiet, chatty = IdFactory(7), IdFactory(7)
    for _ in range(5):
        chatty.request_id()
    assert [quiet.new("step") for _ in range(3)] == [chatty.new("step") for _ in range(3)]
    assert IdFactory(7).request_id() == IdFactory(7).request_id() != IdFactory(8).request_id()
