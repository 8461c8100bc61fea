"""The upstream as the run engine sees it: made once per process from the settings, closed at shutdown.

    backend = UpstreamBackend.from_settings(url, api_key, models, record=path)   # None: the stub answers
    async with backend.stream(request) as turn:
        async for delta in turn: ...
    finished = turn.finished()
    await backend.record(request, finished, run_id=run.id)     # appends to --record FILE, if set
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import httpx

from emulator.upstream.client import StreamedTurn, UpstreamClient
from emulator.upstream.config import DEFAULT_TIMEOUT_SECONDS, UpstreamConfig, from_settings
from emulator.upstream.deltas import FinishedTurn
from emulator.upstream.errors import UpstreamError
from emulator.upstream.recording import Recorder
from emulator.upstream.request import TurnRequest

log = logging.getLogger("emulator.upstream")


class UpstreamBackend:
    def __init__(
        self,
        config: UpstreamConfig,
        *,
        record: Path | None = None,
        record_failures: bool = False,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config
        self.client = UpstreamClient(config, transport=transport)
        self.recorder = None if record is None else Recorder(record)
        self.record_failures = record_failures
        """Failures are not recorded by default: a replay should not fail where the upstream once hiccuped."""

    @classmethod
    def from_settings(
        cls,
        url: str | None,
        api_key: str | None,
        models: str | None,
        *,
        record: Path | None = None,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> UpstreamBackend | None:
        """The backend the settings ask for, or None when no upstream URL is set (ValueError for bad settings,
        including `--record` without an upstream: there would be nothing to record)."""
        config = from_settings(url, api_key, models, timeout_seconds)
        if config is None:
            if record is not None:
                raise ValueError("--record needs an upstream (--upstream-url): only upstream turns are recorded")
            return None
        return cls(config, record=record)

    def stream(self, request: TurnRequest) -> StreamedTurn:
        return self.client.stream(request)

    async def record(
        self,
        request: TurnRequest,
        outcome: FinishedTurn | UpstreamError,
        *,
        run_id: str,
        assistant_id: str | None = None,
    ) -> bool:
        """Append the turn to the record file (the write runs off the event loop); False when nothing was written.

        A turn one scripted turn cannot say (a built-in called together with other tools) is logged and skipped:
        recording never fails a run.
        """
        if self.recorder is None or (isinstance(outcome, UpstreamError) and not self.record_failures):
            return False
        try:
            await asyncio.to_thread(self.recorder.record, request, outcome, assistant_id=assistant_id)
        except (ValueError, OSError) as exc:
            log.warning("run %s: its upstream turn is not recorded in %s: %s", run_id, self.recorder.path, exc)
            return False
        return True

    async def aclose(self) -> None:
        await self.client.aclose()
