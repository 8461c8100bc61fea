"""Where the upstream model server is and which of its models answers for each Assistants model id.

The model map is written `gpt-4o=llama3.1:8b,*=qwen2.5:7b` (`--upstream-models` / `EMULATOR_UPSTREAM_MODELS`):
`*` names the model for every id without its own entry; without `*`, an unmapped id is sent to the upstream
unchanged (an OpenAI-compatible proxy such as LiteLLM often knows the OpenAI names itself).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

WILDCARD = "*"

DEFAULT_TIMEOUT_SECONDS = 120.0
"""How long the upstream may stay silent (connecting, before the first byte, between chunks): a local server
loading a model into memory first can take a minute."""


@dataclass(frozen=True)
class ModelMap:
    """Assistants model id -> upstream model name."""

    entries: tuple[tuple[str, str], ...] = ()
    fallback: str | None = None
    """The `*` entry: the upstream model of every id without its own entry (None: ids pass through)."""

    def upstream_model(self, model: str) -> str:
        for name, upstream in self.entries:
            if name == model:
                return upstream
        return self.fallback if self.fallback is not None else model


def parse_model_map(text: str | None) -> ModelMap:
    """Parse `id=upstream,id=upstream,*=upstream`; blank or None is the empty map (every id passes through).

    Raises ValueError naming the entry at fault: a missing `=`, an empty side, an id mapped twice.
    """
    if text is None or not text.strip():
        return ModelMap()
    entries: dict[str, str] = {}
    for position, raw in enumerate(text.split(","), start=1):
        entry = raw.strip()
        if not entry:
            raise ValueError(
                f"upstream models: entry {position} of {text!r} is empty (entries are separated by single commas)"
            )
        name, equals, upstream = (part.strip() for part in entry.partition("="))
        if not equals:
            raise ValueError(
                f"upstream models: entry {entry!r} has no '=': write ASSISTANTS_MODEL=UPSTREAM_MODEL, "
                f"or *=UPSTREAM_MODEL for every model"
            )
        if not name:
            raise ValueError(f"upstream models: entry {entry!r} names no Assistants model before '='")
        if not upstream:
            raise ValueError(f"upstream models: entry {entry!r} names no upstream model after '='")
        if name in entries:
            raise ValueError(f"upstream models: {name!r} is mapped twice ({entries[name]!r} and {upstream!r})")
        entries[name] = upstream
    fallback = entries.pop(WILDCARD, None)
    return ModelMap(entries=tuple(entries.items()), fallback=fallback)


def redact_url(url: str) -> str:
    """`url` without user, password, query or fragment: what error messages and logs may show."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def normalize_url(url: str) -> str:
    """The base URL (`http://127.0.0.1:11434/v1`) without a trailing slash; ValueError unless http(s).

    A query (`?api-version=…`, as Azure wants) is kept: it goes on every request.
    """
    parts = urlsplit(url.strip())
    path = parts.path.rstrip("/")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"upstream URL {redact_url(url.strip())!r} is not an http:// or https:// URL with a host")
    if path.endswith("/chat/completions"):
        raise ValueError(
            f"upstream URL {redact_url(url.strip())!r} should be the API's base (e.g. http://127.0.0.1:11434/v1), "
            f"without /chat/completions"
        )
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


@dataclass(frozen=True, repr=False)
class UpstreamConfig:
    url: str
    """The OpenAI-compatible API's base URL; requests go to `{url}/chat/completions` (its query kept)."""
    api_key: str | None = field(default=None, repr=False)
    """Sent as `Authorization: Bearer …` when set (never logged)."""
    models: ModelMap = ModelMap()
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS

    def __post_init__(self) -> None:
        object.__setattr__(self, "url", normalize_url(self.url))
        if self.timeout_seconds <= 0:
            raise ValueError(f"upstream timeout must be positive, not {self.timeout_seconds}")

    def __repr__(self) -> str:
        return (
            f"UpstreamConfig(url={redact_url(self.url)!r}, api_key={'set' if self.api_key else None}, "
            f"models={self.models!r}, timeout_seconds={self.timeout_seconds!r})"
        )

    @property
    def completions_url(self) -> str:
        parts = urlsplit(self.url)
        return urlunsplit((parts.scheme, parts.netloc, f"{parts.path}/chat/completions", parts.query, ""))

    @property
    def display_url(self) -> str:
        """The completions URL as messages show it (no credentials)."""
        return redact_url(self.completions_url)

    def upstream_model(self, model: str) -> str:
        return self.models.upstream_model(model)


def from_settings(
    url: str | None, api_key: str | None, models: str | None, timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
) -> UpstreamConfig | None:
    """The configuration given by the settings, or None (the stub model answers) when no URL is set.

    A model map or key without a URL is a mistake worth stopping for: ValueError.
    """
    if not url or not url.strip():
        if (models and models.strip()) or api_key:
            raise ValueError("upstream models or API key are set but no upstream URL (--upstream-url)")
        return None
    return UpstreamConfig(
        url=url, api_key=api_key or None, models=parse_model_map(models), timeout_seconds=timeout_seconds
    )
