"""Rate limits by the emulator clock: fixed one-minute windows per tenant, for management requests and for
each model's calls (requests and tokens). Off unless a tenant configures them (`POST /_emulator/rate_limits`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from emulator import limits
from emulator.errors import RateLimited
from emulator.store import control as store

MANAGEMENT_BUCKET = "requests"


@dataclass(frozen=True)
class Limit:
    requests: int | None
    tokens: int | None


def management_limit(config: dict[str, Any] | None) -> Limit | None:
    if not config:
        return None
    preset = limits.RATE_LIMIT_TIERS.get(config.get("tier") or "", {})
    rpm = config.get("requests_per_minute") or preset.get("requests_per_minute")
    return Limit(requests=rpm, tokens=None) if rpm else None


def model_limit(config: dict[str, Any] | None, model: str) -> Limit | None:
    if not config:
        return None
    preset = limits.RATE_LIMIT_TIERS.get(config.get("tier") or "", {})
    per_model = config.get("models") or {}
    own = per_model.get(model) or per_model.get("*") or {}
    rpm = own.get("requests_per_minute") or preset.get("model_requests_per_minute")
    tpm = own.get("tokens_per_minute") or preset.get("model_tokens_per_minute")
    return Limit(requests=rpm, tokens=tpm) if rpm or tpm else None


def token_headers(session: Session, tenant: str, config: dict[str, Any] | None, now: int) -> dict[str, str]:
    """The `x-ratelimit-*-tokens` headers of a normal response: the tenant's default model token limit (tier or
    `"*"`) against the tokens its model calls used in this window."""
    limit = model_limit(config, "*")
    if limit is None or not limit.tokens:
        return {}
    used = store.model_tokens_in_window(session, tenant, window_start(now))
    return headers(Limit(requests=None, tokens=limit.tokens), 0, used, now)


def window_start(now: int) -> int:
    return now - now % limits.RATE_LIMIT_WINDOW_SECONDS


def _duration(seconds: int) -> str:
    """OpenAI's reset format: `1s`, `6m0s`."""
    minutes, rest = divmod(max(seconds, 0), 60)
    return f"{minutes}m{rest}s" if minutes else f"{rest}s"


def headers(limit: Limit, used_requests: int, used_tokens: int, now: int) -> dict[str, str]:
    reset = _duration(window_start(now) + limits.RATE_LIMIT_WINDOW_SECONDS - now)
    out: dict[str, str] = {}
    if limit.requests:
        out |= {
            "x-ratelimit-limit-requests": str(limit.requests),
            "x-ratelimit-remaining-requests": str(max(limit.requests - used_requests, 0)),
            "x-ratelimit-reset-requests": reset,
        }
    if limit.tokens:
        out |= {
            "x-ratelimit-limit-tokens": str(limit.tokens),
            "x-ratelimit-remaining-tokens": str(max(limit.tokens - used_tokens, 0)),
            "x-ratelimit-reset-tokens": reset,
        }
    return out


def charge(
    session: Session, tenant: str, bucket: str, limit: Limit, now: int, *, requests: int = 1, tokens: int = 0
) -> dict[str, str]:
    """Count a request (and tokens) in the current window; 429 `RateLimited` when it goes over a limit.

    A refused request is not counted. The window's row stays locked until the caller's transaction ends, so
    concurrent requests (and replicas) never both take the last unit. Returns the `x-ratelimit-*` headers.
    """
    start = window_start(now)
    current = store.lock_window(session, tenant, bucket, start)
    used_requests, used_tokens = current.requests, current.tokens
    retry_after = start + limits.RATE_LIMIT_WINDOW_SECONDS - now
    if limit.requests and used_requests + requests > limit.requests:
        raise _refusal(
            "requests",
            "RPM",
            limit.requests,
            used_requests,
            requests,
            retry_after,
            headers(limit, used_requests, used_tokens, now),
        )
    if limit.tokens and used_tokens + tokens > limit.tokens:
        raise _refusal(
            "tokens",
            "TPM",
            limit.tokens,
            used_tokens,
            tokens,
            retry_after,
            headers(limit, used_requests, used_tokens, now),
        )
    current.requests += requests
    current.tokens += tokens
    session.flush()
    return headers(limit, current.requests, current.tokens, now)


def _refusal(
    kind: str, unit: str, limit: int, used: int, requested: int, retry_after: int, extra: dict[str, str]
) -> RateLimited:
    return RateLimited(
        f"Rate limit reached for {kind} per min ({unit}): Limit {limit}, Used {used}, Requested {requested}. "
        f"Please try again in {retry_after}s.",
        code="rate_limit_exceeded",
        headers={**extra, "retry-after": str(retry_after), "retry-after-ms": str(retry_after * 1000)},
        error_type=kind,
    )
