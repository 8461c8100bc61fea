"""The run progression policy (`EMULATOR_RUN_PROGRESSION`): how many reads it takes a polled run to advance.

`immediate`: a run advances as far as it can at each read; `polls:N`: a run advances only from its Nth read
on (each read counts one observation), so a client sees it `queued`/`in_progress` N-1 times first. The policy
is parsed once (per policy text), not at every advance.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from emulator.settings import Settings

_POLLS = re.compile(r"polls:([0-9]+)")


@dataclass(frozen=True)
class Progression:
    polls: int
    """Observations before a run advances (0: at once)."""

    def ready(self, observations: int) -> bool:
        return observations >= self.polls


IMMEDIATE = Progression(0)


@functools.lru_cache(maxsize=8)
def parse(policy: str) -> Progression:
    if policy == "immediate":
        return IMMEDIATE
    matched = _POLLS.fullmatch(policy)
    if matched is None:
        raise ValueError(f"run progression {policy!r} is neither 'immediate' nor 'polls:N'")
    return Progression(int(matched.group(1)))


def left_to_reads(settings: Settings) -> bool:
    """Runs move at their clients' reads, not on their own: the `polls:N` policy counts reads, and a server
    started with `--seed` draws the ids runs get from one sequence, so who advances a run, and when, must follow
    the client's requests for the same requests to give the same ids. Only work that takes time (an upstream
    model call, a code cell) is a runner's even so (`runs.schedule`)."""
    return bool(parse(settings.run_progression).polls) or settings.seed is not None
