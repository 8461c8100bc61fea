"""Resetting a tenant (`POST /_emulator/reset`): every object it has goes, its control state included."""

from __future__ import annotations

import os
from pathlib import Path

from emulator.context import Ctx
from emulator.store import tenants


def reset_tenant(ctx: Ctx) -> list[Path]:
    """Delete every object of the calling tenant; returns the file paths to remove after commit."""
    return tenants.delete_tenant(ctx.session, ctx.tenant)


def remove_paths(paths: list[Path]) -> None:
    for path in paths:
        if path.exists():
            os.unlink(path)
