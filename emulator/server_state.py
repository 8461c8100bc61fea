"""What lives for the life of the server process: settings, the database, the id factory."""

from __future__ import annotations

from dataclasses import dataclass, field

from emulator.control.cache import ControlCache
from emulator.db import Database
from emulator.ids import IdFactory
from emulator.settings import Settings
from emulator.stub_model import Model, StubModel


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    db: Database
    ids: IdFactory
    model: Model = field(default_factory=StubModel)
    control: ControlCache = field(default_factory=ControlCache)
