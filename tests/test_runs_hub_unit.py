"""The run hub on its own: many waiters, a notify from a worker thread, timeouts, and nothing left behind."""

from __future__ import annotations

import asyncio
import threading
import time

from emulator.runs.hub import RunHub


def test_one_notify_wakes_every_waiter_of_the_run_and_no_other() -> None:
    async def scenario() -> tuple[list[bool], list[bool], list[str]]:
        hub = RunHub()
        hub.bind_running_loop()
        waiting = [asyncio.create_task(hub.wait("run_a", 5)) for _ in range(1000)]
        others = [asyncio.create_task(hub.wait("run_b", 0.3)) for _ in range(10)]
        await asyncio.sleep(0.05)
        hub.notify("run_a")
        woken = await asyncio.wait_for(asyncio.gather(*waiting), 1)
        return woken, await asyncio.gather(*others), hub.waited_runs()

    woken, others, left = asyncio.run(scenario())
    assert woken == [True] * 1000
    assert others == [False] * 10, "a run nobody notified wakes nobody before its timeout"
    assert left == []


def test_a_notify_from_another_thread_wakes_the_loop_at_once() -> None:
    async def scenario() -> tuple[bool, float]:
        hub = RunHub()
        hub.bind_running_loop()
        started = time.monotonic()
        threading.Timer(0.1, hub.notify_many, args=(["run_a", "run_z"],)).start()
        woken = await hub.wait("run_a", 10)
        return woken, time.monotonic() - started

    woken, took = asyncio.run(scenario())
    assert woken and took < 1


def test_a_wait_times_out_and_leaves_nothing() -> None:
    async def scenario() -> tuple[bool, float, list[str]]:
        hub = RunHub()
        started = time.monotonic()
        woken = await hub.wait("run_a", 0.2)
        return woken, time.monotonic() - started, hub.waited_runs()

    woken, took, left = asyncio.run(scenario())
    assert not woken and 0.19 < took < 1 and left == []


def test_a_cancelled_waiter_leaves_and_the_others_stay() -> None:
    async def scenario() -> tuple[list[str], list[str], bool]:
        hub = RunHub()
        hub.bind_running_loop()
        leaving = asyncio.create_task(hub.wait("run_a", 10))
        staying = asyncio.create_task(hub.wait("run_a", 10))
        await asyncio.sleep(0.01)
        leaving.cancel()
        await asyncio.sleep(0.01)
        still = hub.waited_runs()
        hub.notify("run_a")
        woken = await staying
        return still, hub.waited_runs(), woken

    still, left, woken = asyncio.run(scenario())
    assert still == ["run_a"] and woken and left == []


def test_a_subscription_keeps_a_notify_that_came_while_it_was_not_waiting() -> None:
    """A stream reads its run, then waits: a cancel committed in between is not missed."""

    async def scenario() -> tuple[bool, float, bool]:
        hub = RunHub()
        hub.bind_running_loop()
        with hub.subscribe("run_a") as changes:
            hub.notify("run_a")  # while the stream reads its run
            started = time.monotonic()
            first = await changes.wait(10)
            took = time.monotonic() - started
            second = await changes.wait(0.05)  # the notify was taken: the next wait waits
        return first, took, second

    first, took, second = asyncio.run(scenario())
    assert first and took < 0.1 and not second


def test_notify_all_wakes_every_waiter() -> None:
    async def scenario() -> list[bool]:
        hub = RunHub()
        hub.bind_running_loop()
        waiting = [asyncio.create_task(hub.wait(f"run_{n}", 5)) for n in range(50)]
        await asyncio.sleep(0.01)
        hub.notify_all()
        return await asyncio.wait_for(asyncio.gather(*waiting), 1)

    assert asyncio.run(scenario()) == [True] * 50


def test_a_notify_with_no_loop_or_no_waiter_is_a_no_op() -> None:
    hub = RunHub()
    hub.notify("run_a")  # no loop bound yet
    hub.notify_all()
    assert hub.waited_runs() == []
