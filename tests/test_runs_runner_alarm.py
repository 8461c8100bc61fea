"""`runs.runner._Alarm`, on a real event loop: the runner is woken at a run's due time, no more often than
`RUNNER_ROUND_SECONDS`, and not at all for a run this process said is no longer due (a read settled it first)
or whose due time moved on."""

from __future__ import annotations

import asyncio
import threading
import time

from emulator import limits
from emulator.runs.runner import _Alarm

SOON = 0.05
LOOK = 0.3
"""Seconds the test waits for rings: past every due time it sets, by several rounds."""


def _rings(schedule: list[tuple[str, str, float]]) -> list[float]:
    """When the alarm rang (seconds after the start), given steps `(action, run id, seconds from the start)`
    taken at once, `action` being `add` or `forget`; the alarm is armed after each round as the runner does."""

    async def scenario() -> list[float]:
        started = time.time()
        rang: list[float] = []
        alarm: _Alarm

        def ring() -> None:
            rang.append(time.time() - started)
            alarm.round_starts()
            alarm.arm()

        alarm = _Alarm(asyncio.get_running_loop(), ring)
        for action, run_id, after in schedule:
            if action == "add":
                alarm.add(started + after, run_id)
            else:
                alarm.forget(run_id)
        await asyncio.sleep(LOOK)
        return rang

    return asyncio.run(scenario())


def test_a_run_due_soon_rings_once_at_its_time() -> None:
    (rang,) = _rings([("add", "run_a", SOON)])
    assert SOON <= rang < SOON + 0.1


def test_a_run_no_longer_due_does_not_ring() -> None:
    assert _rings([("add", "run_a", SOON), ("forget", "run_a", 0)]) == []


def test_a_run_whose_due_time_moved_on_rings_at_the_new_time_only() -> None:
    rang = _rings([("add", "run_a", SOON), ("add", "run_a", 10.0)])
    assert rang == []
    (rang_later,) = _rings([("add", "run_a", 10.0), ("add", "run_a", SOON)])
    assert SOON <= rang_later < SOON + 0.1


def test_forgetting_one_run_keeps_the_others_and_a_time_told_without_a_run() -> None:
    (rang,) = _rings([("add", "run_a", SOON), ("add", "run_b", SOON + 0.1), ("forget", "run_a", 0)])
    assert SOON + 0.1 <= rang < SOON + 0.2, "the forgotten run's time passed without a ring; run_b's rang"
    (anonymous,) = _rings([("add", "", SOON), ("forget", "", 0)])
    assert SOON <= anonymous < SOON + 0.1


def test_a_run_told_from_another_thread_rings_on_the_loop() -> None:
    async def scenario() -> list[str]:
        rang: list[str] = []
        loop = asyncio.get_running_loop()
        alarm = _Alarm(loop, lambda: rang.append(threading.current_thread().name))
        teller = threading.Thread(target=alarm.add, args=(time.time() + SOON, "run_a"), name="unit-of-work")
        teller.start()
        teller.join()
        await asyncio.sleep(LOOK)
        return rang

    assert asyncio.run(scenario()) == [threading.main_thread().name]


def test_runs_due_close_together_ring_no_closer_than_the_round_time() -> None:
    """The round at the first time takes what is due then; the next waits `RUNNER_ROUND_SECONDS`, so that it
    takes the runs due meanwhile at once."""
    rang = _rings([("add", "run_a", SOON), ("add", "run_b", SOON + 0.01), ("add", "run_c", SOON + 0.02)])
    assert len(rang) == 2, rang
    assert rang[0] >= SOON and rang[1] - rang[0] >= limits.RUNNER_ROUND_SECONDS
