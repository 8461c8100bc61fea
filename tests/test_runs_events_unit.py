"""`runs.events`: how a message's text is cut into deltas, and where its annotations ride."""

from __future__ import annotations

from typing import Any

from emulator.runs import events


def _text_of(event: events.Event) -> dict[str, Any]:
    text: dict[str, Any] = event.data["delta"]["content"][0]["text"]
    return text


def test_a_delta_per_word_keeps_the_spaces_before_it() -> None:
    assert events.chunks("Hello  big world ", None) == ["Hello", "  big", " world", " "]


def test_a_chunk_size_cuts_by_characters() -> None:
    assert events.chunks("abcdefg", 3) == ["abc", "def", "g"]


def test_empty_text_is_one_empty_delta() -> None:
    assert events.chunks("", None) == [""]
    assert events.chunks("", 4) == [""]


def test_the_pieces_add_up_to_the_text() -> None:
    text = "  Leading space,\ttabs\nand newlines  "
    assert "".join(events.chunks(text, None)) == text
    assert "".join(events.chunks(text, 5)) == text


def test_the_first_delta_opens_annotations_and_each_rides_where_its_marker_ends() -> None:
    found = [{"type": "file_citation", "text": "[1]", "start_index": 4, "end_index": 7},
             {"type": "file_citation", "text": "[2]", "start_index": 17, "end_index": 20}]
    produced = events.text_deltas("msg_1", ["See ", "[1] and", " also", " [2]"], found)
    assert [event.name for event in produced] == ["thread.message.delta"] * 4
    texts = [_text_of(event) for event in produced]
    assert texts[0] == {"value": "See ", "annotations": []}
    assert texts[1]["annotations"] == [{"index": 0, **found[0]}]
    assert "annotations" not in texts[2]
    assert texts[3]["annotations"] == [{"index": 1, **found[1]}]
    assert all(event.data["id"] == "msg_1" for event in produced)
