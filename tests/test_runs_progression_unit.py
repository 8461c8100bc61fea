"""`runs.progression`: the policy text parsed once into how many reads a polled run waits."""

from __future__ import annotations

import pytest

from emulator.runs import progression
from emulator.runs.progression import Progression


def test_immediate_is_ready_at_once() -> None:
    policy = progression.parse("immediate")
    assert policy == Progression(0)
    assert policy.ready(0) and policy.ready(1)


@pytest.mark.parametrize(("text", "polls"), [("polls:0", 0), ("polls:1", 1), ("polls:3", 3), ("polls:12", 12)])
def test_polls_n_waits_for_n_observations(text: str, polls: int) -> None:
    policy = progression.parse(text)
    assert policy.polls == polls
    assert [policy.ready(seen) for seen in range(polls + 2)] == [seen >= polls for seen in range(polls + 2)]


def test_the_policy_is_parsed_once_per_text() -> None:
    assert progression.parse("polls:4") is progression.parse("polls:4")


@pytest.mark.parametrize("text", ["", "polls", "polls:", "polls:x", "polls:-1", "later", "immediate "])
def test_other_text_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        progression.parse(text)
