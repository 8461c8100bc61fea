"""The run and run-step state machines, every pair checked against a table written out here (not read from
the code): what may follow what, which statuses are terminal, and the refusal texts the API answers with.
"""

from __future__ import annotations

import itertools

import pytest

from emulator.runs import state
from emulator.runs.state import IllegalTransition, RunStatus, StepStatus

Q, IP, RA = "queued", "in_progress", "requires_action"
CANCELLING, CANCELLED, FAILED, COMPLETED, INCOMPLETE, EXPIRED = (
    "cancelling",
    "cancelled",
    "failed",
    "completed",
    "incomplete",
    "expired",
)

EXPECTED_RUN_MOVES: dict[str, set[str]] = {
    Q: {IP, CANCELLING, FAILED, EXPIRED},
    IP: {RA, COMPLETED, INCOMPLETE, FAILED, CANCELLING, EXPIRED},
    RA: {Q, CANCELLING, FAILED, EXPIRED},  # outputs submitted: back to queued, as the hosted API answers
    CANCELLING: {CANCELLED},
    CANCELLED: set(),
    FAILED: set(),
    COMPLETED: set(),
    INCOMPLETE: set(),
    EXPIRED: set(),
}

EXPECTED_STEP_MOVES: dict[str, set[str]] = {
    "in_progress": {"completed", "cancelled", "failed", "expired"},
    "completed": set(),
    "cancelled": set(),
    "failed": set(),
    "expired": set(),
}

RUN_PAIRS = list(itertools.product(EXPECTED_RUN_MOVES, repeat=2))
STEP_PAIRS = list(itertools.product(EXPECTED_STEP_MOVES, repeat=2))


def test_the_status_sets_are_the_documented_ones() -> None:
    assert {status.value for status in RunStatus} == set(EXPECTED_RUN_MOVES)
    assert {status.value for status in StepStatus} == set(EXPECTED_STEP_MOVES)
    assert {status.value for status in state.TERMINAL} == {CANCELLED, FAILED, COMPLETED, INCOMPLETE, EXPIRED}
    assert {status.value for status in state.ACTIVE} == {Q, IP, RA, CANCELLING}
    assert {status.value for status in state.EXPIRABLE} == {Q, IP, RA}


@pytest.mark.parametrize(("current", "target"), RUN_PAIRS)
def test_every_run_pair_is_allowed_or_refused_per_the_table(current: str, target: str) -> None:
    allowed = target in EXPECTED_RUN_MOVES[current]
    assert state.can_move(RunStatus(current), RunStatus(target)) is allowed
    if allowed:
        assert state.transition(current, RunStatus(target)) is RunStatus(target)
    else:
        with pytest.raises(IllegalTransition) as refused:
            state.transition(current, RunStatus(target))
        assert (refused.value.current, refused.value.target) == (current, target)
        assert str(refused.value) == f"illegal transition {current} -> {target}"


@pytest.mark.parametrize(("current", "target"), STEP_PAIRS)
def test_every_step_pair_is_allowed_or_refused_per_the_table(current: str, target: str) -> None:
    if target in EXPECTED_STEP_MOVES[current]:
        assert state.step_transition(current, StepStatus(target)) is StepStatus(target)
    else:
        with pytest.raises(IllegalTransition):
            state.step_transition(current, StepStatus(target))


@pytest.mark.parametrize("status", sorted(EXPECTED_RUN_MOVES))
def test_terminal_statuses_have_no_exit_and_no_self_loop(status: str) -> None:
    terminal = status in {CANCELLED, FAILED, COMPLETED, INCOMPLETE, EXPIRED}
    assert state.is_terminal(status) is terminal
    exits = {target.value for target in RunStatus if state.can_move(RunStatus(status), target)}
    assert (exits == set()) is terminal
    assert not state.can_move(RunStatus(status), RunStatus(status)), "no status moves to itself"


@pytest.mark.parametrize("status", sorted(EXPECTED_RUN_MOVES))
def test_cancel_refusal_texts(status: str) -> None:
    refusal = state.cancel_refusal(status)
    if status in {Q, IP, RA}:
        assert refusal is None
    else:
        assert refusal == f"Cannot cancel run with status '{status}'."
    assert state.cancel_refusal("completed") == "Cannot cancel run with status 'completed'."


@pytest.mark.parametrize("status", sorted(EXPECTED_RUN_MOVES))
def test_tool_outputs_refusal_texts(status: str) -> None:
    refusal = state.tool_outputs_refusal(status)
    if status == RA:
        assert refusal is None
    else:
        assert refusal == f'Runs in status "{status}" do not accept tool outputs.'
    assert state.tool_outputs_refusal("expired") == 'Runs in status "expired" do not accept tool outputs.'


def test_an_unknown_status_is_not_a_status() -> None:
    with pytest.raises(ValueError):
        state.transition("paused", RunStatus.QUEUED)
    with pytest.raises(ValueError):
        state.step_transition("paused", StepStatus.COMPLETED)
