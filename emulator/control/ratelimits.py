"""Rate limits by the emulator clock: fixed one-minute windows per tenant, for management requests and for
each model's calls (requests and tokens). Off unless a tenant configures them (`POST /_emulator/rate_limits`).

Management limits count only the Assistants endpoints (assistants, threads, messages, runs, steps, vector
stores and their files and batches), per method as the hosted API did (GET, POST, DELETE); creating a run
(`createRun`, `createThreadAndRun`) counts against both the POST limit and the run-creation limit, all or
nothing: a request refused by one of them is counted by neither.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from emulator import limits
from emulator.context import Ctx
from emulator.errors import RateLimited
from emulator.schemas.control import RateLimits
from emulator.store import rate_counters, tenant_settings

ASSISTANTS_PATHS = ("/v1/assistants", "/v1/threads", "/v1/vector_stores")
RUN_CREATIONS = frozenset({"createRun", "createThreadAndRun"})
MANAGEMENT_LIMIT_NAMES = {
    "get": "GET requests",
    "post": "POST requests",
    "delete": "DELETE requests",
    "create_run": "runs created",
}
"""Each management limit's key (in the config, the presets and the bucket) and its name in a 429's message."""

RequestKey = tuple[str, str, str | None]
"""What the limits look at in a request: its method, its path and its operation id (found once, by the control
middleware)."""


@dataclass(frozen=True)
class Limit:
    requests: int | None
    tokens: int | None


def management_limits(config: dict[str, Any] | None, method: str, path: str, operation: str | None) -> dict[str, int]:
    """The management limits (key -> requests per minute) a request counts against: its method's on an
    Assistants endpoint, and the run-creation limit when it creates a run; those configured or in the tier."""
    if not config or not any(path == root or path.startswith(root + "/") for root in ASSISTANTS_PATHS):
        return {}
    numbers: dict[str, int] = {**_tier(config).get("management", {}), **(config.get("management") or {})}
    keys = ["create_run"] if operation in RUN_CREATIONS else []
    keys.append(method.lower())
    return {key: numbers[key] for key in keys if numbers.get(key)}


def _tier(config: dict[str, Any]) -> dict[str, Any]:
    """The preset numbers of the config's tier (none without one)."""
    preset: dict[str, Any] = limits.RATE_LIMIT_TIERS.get(config.get("tier") or "", {})
    return preset


def counts(config: dict[str, Any] | None, request: RequestKey) -> bool:
    """Whether a request is charged (`charge_management`) or answered with token headers (`token_headers`)."""
    return bool(management_limits(config, *request)) or token_limit(config) is not None


def token_limit(config: dict[str, Any] | None) -> int | None:
    """The tenant's default model token limit (tier or `"*"`): what a normal response's token headers show."""
    limit = model_limit(config, "*")
    return limit.tokens if limit is not None and limit.tokens else None


def model_limit(config: dict[str, Any] | None, model: str) -> Limit | None:
    if not config:
        return None
    preset = _tier(config)
    per_model = config.get("models") or {}
    own = per_model.get(model) or per_model.get("*") or {}
    rpm = own.get("requests_per_minute") or preset.get("model_requests_per_minute")
    tpm = own.get("tokens_per_minute") or preset.get("model_tokens_per_minute")
    return Limit(requests=rpm, tokens=tpm) if rpm or tpm else None


def token_headers(session: Session, tenant: str, config: dict[str, Any] | None, now: int) -> dict[str, str]:
    """The `x-ratelimit-*-tokens` headers of a normal response: the tenant's default model token limit (tier or
    `"*"`) against the tokens its model calls used in this window."""
    tokens = token_limit(config)
    if tokens is None:
        return {}
    used = rate_counters.model_tokens_in_window(session, tenant, window_start(now))
    return headers(Limit(requests=None, tokens=tokens), 0, used, now)


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


def charge_management(
    session: Session,
    tenant: str,
    config: dict[str, Any] | None,
    request: RequestKey,
    now: int,
) -> dict[str, str]:
    """Count an Assistants request against every management limit it falls under; 429 `RateLimited` naming the
    first one it would exceed (run creation before the method), counting it against none.

    The windows are locked in key order until the caller's transaction ends (no deadlock between a run creation
    and a plain POST). Returns the `x-ratelimit-*-requests` headers of the limit with the fewest requests left.
    """
    applicable = management_limits(config, *request)
    if not applicable:
        return {}
    start = window_start(now)
    windows = {
        key: rate_counters.lock_window(session, tenant, f"management:{key}", start) for key in sorted(applicable)
    }
    for key, limit in applicable.items():
        used = windows[key].requests
        if used + 1 > limit:
            raise _refusal(
                f"{MANAGEMENT_LIMIT_NAMES[key]} per min (RPM) on the Assistants endpoints",
                "requests",
                limit,
                used,
                1,
                start + limits.RATE_LIMIT_WINDOW_SECONDS - now,
                headers(Limit(requests=limit, tokens=None), used, 0, now),
            )
    for window in windows.values():
        window.requests += 1
    tightest = min(applicable, key=lambda key: applicable[key] - windows[key].requests)
    return headers(Limit(requests=applicable[tightest], tokens=None), windows[tightest].requests, 0, now)


def charge(
    session: Session, tenant: str, bucket: str, limit: Limit, now: int, *, requests: int = 1, tokens: int = 0
) -> dict[str, str]:
    """Count a request (and tokens) in the current window; 429 `RateLimited` when it goes over a limit.

    A refused request is not counted. The window's row stays locked until the caller's transaction ends, so
    concurrent requests (and replicas) never both take the last unit. Returns the `x-ratelimit-*` headers.
    """
    start = window_start(now)
    current = rate_counters.lock_window(session, tenant, bucket, start)
    used_requests, used_tokens = current.requests, current.tokens
    retry_after = start + limits.RATE_LIMIT_WINDOW_SECONDS - now
    if limit.requests and used_requests + requests > limit.requests:
        raise _refusal(
            "requests per min (RPM)",
            "requests",
            limit.requests,
            used_requests,
            requests,
            retry_after,
            headers(limit, used_requests, used_tokens, now),
        )
    if limit.tokens and used_tokens + tokens > limit.tokens:
        raise _refusal(
            "tokens per min (TPM)",
            "tokens",
            limit.tokens,
            used_tokens,
            tokens,
            retry_after,
            headers(limit, used_requests, used_tokens, now),
        )
    current.requests += requests
    current.tokens += tokens
    return headers(limit, current.requests, current.tokens, now)


def _refusal(
    subject: str, kind: str, limit: int, used: int, requested: int, retry_after: int, extra: dict[str, str]
) -> RateLimited:
    """The 429: `subject` names the limit (`requests per min (RPM)`), `kind` is the error's type."""
    return RateLimited(
        f"Rate limit reached for {subject}: Limit {limit}, Used {used}, Requested {requested}. "
        f"Please try again in {retry_after}s.",
        code="rate_limit_exceeded",
        headers={**extra, "retry-after": str(retry_after), "retry-after-ms": str(retry_after * 1000)},
        error_type=kind,
    )


def model_call_limit(session: Session, tenant: str, model: str) -> Limit | None:
    """The tenant's limit on calls of `model` (None: unlimited)."""
    settings = tenant_settings.load(session, tenant)
    return model_limit(settings.rate_limits if settings is not None else None, model)


def set_rate_limits(ctx: Ctx, body: RateLimits | None) -> dict[str, Any] | None:
    """Replace the tenant's rate limits (None: none); returns them as saved."""
    config = body.model_dump(exclude_none=True) if body is not None else None
    tenant_settings.save(ctx.session, ctx.tenant, "rate_limits", config or None)
    return config
