"""How long a model call takes: the tenant's latency profile (per model or for all), else the server's.

Streams wait the time to first token in real time and pace deltas at the token rate; a polled run becomes
ready when the emulator clock passes the whole generation time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from emulator.context import Ctx
from emulator.schemas.control import Latency
from emulator.store import tenant_settings


@dataclass(frozen=True)
class Profile:
    ttft_seconds: float
    tokens_per_second: float

    def generation_seconds(self, completion_tokens: int) -> float:
        return completion_tokens / self.tokens_per_second if self.tokens_per_second else 0.0


def profile(ctx: Ctx, model: str) -> Profile:
    configured = configured_profile(ctx)
    if configured:
        chosen = (configured.get("models") or {}).get(model) or configured
        return Profile(chosen.get("ttft_ms", 0) / 1000, chosen.get("tokens_per_second", 0.0))
    return Profile(ctx.settings.latency_ttft_ms / 1000, ctx.settings.latency_tokens_per_second)


def configured_profile(ctx: Ctx) -> dict[str, Any] | None:
    """The tenant's latency profile; None when it has none (the server's defaults apply)."""
    settings = tenant_settings.load(ctx.session, ctx.tenant)
    return settings.latency if settings is not None else None


def set_profile(ctx: Ctx, body: Latency | None) -> dict[str, Any] | None:
    """Replace the tenant's latency profile (None: the server's defaults); returns it as saved."""
    config = body.model_dump(exclude_none=True) if body is not None else None
    tenant_settings.save(ctx.session, ctx.tenant, "latency", config)
    return config
