"""`runs.pending`: the pending turn round-trips through its stored JSON, whose shape stays that of earlier
versions (runs stored by them read the same)."""

from __future__ import annotations

from typing import Any

import pytest

from emulator.runs import pending
from emulator.runs.pending import CodeTurn, FunctionCallsTurn, TextTurn, Timing

USAGE = {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}
TIMING = Timing(first_token_at=1.5, done_at=2.5, delta_pause=0.01)


@pytest.mark.parametrize(
    "turn",
    [
        TextTurn("step_1", USAGE, TIMING, "msg_1", "Hello there", truncated=False),
        TextTurn("step_1", USAGE, TIMING, "msg_1", "Hel", truncated=True, chunk_size=2,
                 citations=[{"marker": "【0:0†a.txt】", "file_id": "file_1", "kind": "file_citation"}],
                 images=["file_2"]),
        FunctionCallsTurn("step_2", USAGE, TIMING),
        CodeTurn("step_3", USAGE, "print(1)", "call_1"),
        CodeTurn("step_3", USAGE, "print(1)", "call_1", claimed_by={"pid": 1, "started": 2.0, "token": "t"}),
    ],
)
def test_a_turn_round_trips_through_json(turn: pending.PendingTurn) -> None:
    assert pending.from_json(pending.to_json(turn)) == turn


def test_the_stored_shapes_are_those_of_before() -> None:
    text = pending.to_json(TextTurn("step_1", USAGE, TIMING, "msg_1", "Hi", truncated=False))
    assert text == {
        "kind": "text", "text": "Hi", "truncated": False, "usage": USAGE, "message_id": "msg_1", "step_id": "step_1",
        "first_token_at": 1.5, "done_at": 2.5, "delta_pause": 0.01, "chunk_size": None, "citations": [],
        "images": [],
    }
    calls = pending.to_json(FunctionCallsTurn("step_2", USAGE, TIMING))
    assert calls == {"kind": "tool_calls", "usage": USAGE, "step_id": "step_2", "first_token_at": 1.5,
                     "done_at": 2.5, "delta_pause": 0.01}
    code = pending.to_json(CodeTurn("step_3", USAGE, "x = 1", "call_1"))
    assert code == {"kind": "code", "code": "x = 1", "call_id": "call_1", "step_id": "step_3", "usage": USAGE}


def test_an_older_text_turn_without_optional_keys_reads() -> None:
    stored: dict[str, Any] = {"kind": "text", "text": "Hi", "truncated": False, "usage": USAGE,
                              "message_id": "msg_1", "step_id": "step_1"}
    turn = pending.from_json(stored)
    assert isinstance(turn, TextTurn)
    assert (turn.chunk_size, turn.citations, turn.images, turn.timing) == (None, [], [], Timing())


def test_a_code_turn_is_ready_at_once_and_claimed_by_copy() -> None:
    turn = CodeTurn("step_3", USAGE, "x = 1", "call_1")
    assert turn.timing.ready_at(streaming=False) == 0.0
    claimed = turn.claimed({"pid": 7})
    assert (turn.claimed_by, claimed.claimed_by) == (None, {"pid": 7})


def test_timing_streams_from_the_first_token_and_polls_from_the_end() -> None:
    assert TIMING.ready_at(streaming=True) == 1.5
    assert TIMING.ready_at(streaming=False) == 2.5


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown kind"):
        pending.from_json({"kind": "telepathy", "step_id": "s", "usage": USAGE})
