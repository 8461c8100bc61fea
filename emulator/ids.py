"""Object ids shaped like the real API's (`asst_…`, `file-…`), from one seedable source of randomness."""

from __future__ import annotations

import os
import random
import secrets
import string
import threading

_ALPHABET = string.ascii_letters + string.digits
_ID_LENGTH = 24
_RANDOM_BYTES = 24
"""192 random bits for 24 base-62 digits (~143 bits): the modulo's bias is below 2**-48."""


def _base62(number: int) -> str:
    digits = []
    for _ in range(_ID_LENGTH):
        number, digit = divmod(number, 62)
        digits.append(_ALPHABET[digit])
    return "".join(digits)

PREFIXES = {
    "assistant": "asst_",
    "thread": "thread_",
    "message": "msg_",
    "run": "run_",
    "step": "step_",
    "vector_store": "vs_",
    "file": "file-",
    "file_batch": "vsfb_",
    "call": "call_",
    "request": "req_",
    "turn": "turn_",
    "fault": "fault_",
}


class IdFactory:
    """Makes ids; cryptographically random unless seeded, in which case the sequence is reproducible."""

    def __init__(self, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._rng: random.Random | None = random.Random(seed) if seed is not None else None
        self._request_rng: random.Random | None = random.Random(f"requests:{seed}") if seed is not None else None
        """Request ids come from a sequence of their own: how often a client reads a run while work runs outside
        its requests (a code cell, an upstream call: a runner's) does not change the ids of what is made after."""

    def _suffix(self) -> str:
        if self._rng is None:
            return _base62(int.from_bytes(os.urandom(_RANDOM_BYTES)))
        with self._lock:
            return "".join(self._rng.choice(_ALPHABET) for _ in range(_ID_LENGTH))

    def new(self, kind: str) -> str:
        return PREFIXES[kind] + self._suffix()

    def request_id(self) -> str:
        if self._request_rng is None:
            return PREFIXES["request"] + secrets.token_hex(16)
        with self._lock:
            return PREFIXES["request"] + f"{self._request_rng.getrandbits(128):032x}"
