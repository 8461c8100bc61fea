"""Annotations of an answer's text: each marker the model wrote becomes a `file_citation` (a retrieved file) or
a `file_path` (a file the code interpreter made), whose `start_index`..`end_index` is exactly the marker."""

from __future__ import annotations

from typing import Any

from emulator.stub_model import Citation


def of_turn(citations: tuple[Citation, ...]) -> list[dict[str, str]]:
    """The turn's markers as stored on the pending answer."""
    return [{"marker": citation.marker, "file_id": citation.file_id, "kind": citation.kind} for citation in citations]


def locate(text: str, citations: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Annotations for the markers that appear whole in `text` (a cut answer may lose some), in order."""
    found = []
    cursor = 0
    for citation in citations:
        start = text.find(citation["marker"], cursor)
        if start < 0:
            continue
        end = start + len(citation["marker"])
        kind = citation.get("kind", "file_citation")
        found.append(
            {
                "type": kind,
                "text": citation["marker"],
                kind: {"file_id": citation["file_id"]},
                "start_index": start,
                "end_index": end,
            }
        )
        cursor = end
    return found
