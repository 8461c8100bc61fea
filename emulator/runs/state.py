"""The run and run-step state machines, as data. Pure: no I/O, no clock.

Every status change in the code base goes through `transition`, so an illegal move cannot happen by
construction; the table is tested exhaustively (every pair: allowed or refused).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class RunStatus(StrEnum):
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    REQUIRES_ACTION = "requires_action"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"
    FAILED = "failed"
    COMPLETED = "completed"
    INCOMPLETE = "incomplete"
    EXPIRED = "expired"


class StepStatus(StrEnum):
    IN_PROGRESS = "in_progress"
    CANCELLED = "cancelled"
    FAILED = "failed"
    COMPLETED = "completed"
    EXPIRED = "expired"


TERMINAL: Final = frozenset(
    {RunStatus.CANCELLED, RunStatus.FAILED, RunStatus.COMPLETED, RunStatus.INCOMPLETE, RunStatus.EXPIRED}
)
ACTIVE: Final = frozenset(RunStatus) - TERMINAL
EXPIRABLE: Final = frozenset({RunStatus.QUEUED, RunStatus.IN_PROGRESS, RunStatus.REQUIRES_ACTION})
"""A run in one of these past its `expires_at` becomes `expired` (SPEC: 10 minutes)."""
CANCELLABLE: Final = frozenset({RunStatus.QUEUED, RunStatus.IN_PROGRESS, RunStatus.REQUIRES_ACTION})

RUN_TRANSITIONS: Final[dict[RunStatus, frozenset[RunStatus]]] = {
    RunStatus.QUEUED: frozenset(
        {RunStatus.IN_PROGRESS, RunStatus.CANCELLING, RunStatus.FAILED, RunStatus.EXPIRED}
    ),
    RunStatus.IN_PROGRESS: frozenset(
        {
            RunStatus.REQUIRES_ACTION, RunStatus.COMPLETED, RunStatus.INCOMPLETE, RunStatus.FAILED,
            RunStatus.CANCELLING, RunStatus.EXPIRED,
        }
    ),
    RunStatus.REQUIRES_ACTION: frozenset(
        {RunStatus.QUEUED, RunStatus.CANCELLING, RunStatus.FAILED, RunStatus.EXPIRED}
    ),
    RunStatus.CANCELLING: frozenset({RunStatus.CANCELLED}),
    **{status: frozenset() for status in TERMINAL},
}

STEP_TRANSITIONS: Final[dict[StepStatus, frozenset[StepStatus]]] = {
    StepStatus.IN_PROGRESS: frozenset(
        {StepStatus.COMPLETED, StepStatus.CANCELLED, StepStatus.FAILED, StepStatus.EXPIRED}
    ),
    StepStatus.CANCELLED: frozenset(),
    StepStatus.FAILED: frozenset(),
    StepStatus.COMPLETED: frozenset(),
    StepStatus.EXPIRED: frozenset(),
}


class IllegalTransition(Exception):
    def __init__(self, current: str, target: str) -> None:
        super().__init__(f"illegal transition {current} -> {target}")
        self.current = current
        self.target = target


def can_move(current: RunStatus, target: RunStatus) -> bool:
    return target in RUN_TRANSITIONS[current]


def transition(current: str, target: RunStatus) -> RunStatus:
    """Return `target` if the run may move there from `current`, else raise `IllegalTransition`."""
    if not can_move(RunStatus(current), target):
        raise IllegalTransition(current, target)
    return target


def step_transition(current: str, target: StepStatus) -> StepStatus:
    if target not in STEP_TRANSITIONS[StepStatus(current)]:
        raise IllegalTransition(current, target)
    return target


def is_terminal(status: str) -> bool:
    return RunStatus(status) in TERMINAL


def cancel_refusal(status: str) -> str | None:
    """The real API's refusal text for a cancel in `status`, or None when a cancel is allowed."""
    if RunStatus(status) in CANCELLABLE:
        return None
    return f"Cannot cancel run with status '{status}'."


def tool_outputs_refusal(status: str) -> str | None:
    if RunStatus(status) is RunStatus.REQUIRES_ACTION:
        return None
    return f'Runs in status "{status}" do not accept tool outputs.'
