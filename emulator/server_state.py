"""What lives for the life of the server process: settings, the database, the id factory, the model."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from emulator.control.cache import ControlCache
from emulator.db import Database
from emulator.ids import IdFactory
from emulator.runs.hub import RunHub
from emulator.runs.waiting import WaitingStreams
from emulator.settings import Settings
from emulator.stub_model import Model, StubModel


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    db: Database
    ids: IdFactory
    model: Model = field(default_factory=StubModel)
    """The stub, or an `UpstreamModel` when the settings name an upstream (`model_for`; closed by `close`)."""
    control: ControlCache = field(default_factory=ControlCache)
    hub: RunHub = field(default_factory=RunHub)
    """Wakes who waits for a run when it changes (`Database.connect`'s `runs_changed` is its `notify_many`)."""
    waiting: WaitingStreams = field(init=False)
    """The runs this process's streams hold, their leases renewed together (`runs.waiting`)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "waiting", WaitingStreams(self.db, self.hub))

    async def close(self) -> None:
        from emulator.runs.upstream_model import UpstreamModel

        if isinstance(self.model, UpstreamModel):
            await self.model.aclose()


def model_for(settings: Settings) -> Model:
    """The model the settings ask for; an upstream's connections live on the running event loop."""
    from emulator.runs.upstream_model import UpstreamModel
    from emulator.upstream.backend import UpstreamBackend

    key = settings.upstream_api_key.get_secret_value() if settings.upstream_api_key else None
    backend = UpstreamBackend.from_settings(
        settings.upstream_url, key, settings.upstream_models, record=settings.record,
        timeout_seconds=settings.upstream_timeout_seconds,
    )
    return StubModel() if backend is None else UpstreamModel(backend, asyncio.get_running_loop())
