"""Who is calling: the tenant of a request's bearer key, with the allow-list applied, found once per request.

The control middleware (fault rules, rate charges), `/v1` and the control plane all ask here, so a key that
`/v1` refuses is refused everywhere, before anything counts it. The operator key (`EMULATOR_ADMIN_KEY`, unset
by default) is always accepted, as a tenant of its own, and may also move every tenant's clock.
"""

from __future__ import annotations

import hmac

from starlette.datastructures import Headers
from starlette.types import Scope

from emulator.context import tenant_of
from emulator.errors import Unauthorized
from emulator.settings import Settings

_NO_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer "
    "auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're "
    "accessing the API from your browser and are prompted for a username. You can obtain an API key from "
    "https://platform.openai.com/account/api-keys."
)

TENANT_SCOPE_KEY = "emulator.tenant"
"""Scope key: the request's tenant, once found."""


def tenant(scope: Scope, settings: Settings) -> str:
    """The caller's tenant: 401 `Unauthorized` without a bearer key, or with one outside the allow-list."""
    found: str | None = scope.get(TENANT_SCOPE_KEY)
    if found is None:
        found = scope[TENANT_SCOPE_KEY] = _authenticate(scope, settings)
    return found


def is_operator(scope: Scope, settings: Settings) -> bool:
    """The request carries the operator key."""
    key = _bearer_key(scope)
    return key is not None and _is_operator_key(key, settings)


def _authenticate(scope: Scope, settings: Settings) -> str:
    key = _bearer_key(scope)
    if key is None:
        raise Unauthorized(_NO_KEY)
    allowed = settings.api_key_allow_list()
    if allowed is not None and key not in allowed and not _is_operator_key(key, settings):
        shown = f"{key[:3]}*{key[-4:]}" if len(key) > 8 else key
        raise Unauthorized(
            f"Incorrect API key provided: {shown}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            code="invalid_api_key",
        )
    return tenant_of(key)


def _bearer_key(scope: Scope) -> str | None:
    scheme, _, key = Headers(scope=scope).get("authorization", "").partition(" ")
    key = key.strip()
    return key if scheme.lower() == "bearer" and key else None


def _is_operator_key(key: str, settings: Settings) -> bool:
    operator = settings.admin_key.get_secret_value() if settings.admin_key is not None else ""
    return bool(operator) and hmac.compare_digest(key.encode(), operator.encode())
