"""How long a model call takes: the tenant's latency profile (per model or for all), else the server's.

Streams wait the time to first token in real time and pace deltas at the token rate; a polled run becomes
ready when the emulator clock passes the whole generation time.
"""

from __future__ import annotations

from dataclasses import dataclass

from emulator.context import Ctx
from emulator.store import control as control_store


@dataclass(frozen=True)
class Profile:
    ttft_seconds: float
    tokens_per_second: float

    def generation_seconds(self, completion_tokens: int) -> float:
        return completion_tokens / self.tokens_per_second if self.tokens_per_second else 0.0


def profile(ctx: Ctx, model: str) -> Profile:
    settings = control_store.tenant_settings(ctx.session, ctx.tenant)
    configured = settings.latency if settings is not None else None
    if configured:
        chosen = (configured.get("models") or {}).get(model) or configured
        return Profile(chosen.get("ttft_ms", 0) / 1000, chosen.get("tokens_per_second", 0.0))
    return Profile(ctx.settings.latency_ttft_ms / 1000, ctx.settings.latency_tokens_per_second)
