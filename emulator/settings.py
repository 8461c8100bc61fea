"""Server configuration: command-line options and `EMULATOR_*` environment variables, one object."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BeforeValidator, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from emulator import limits

LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EMULATOR_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("./emulator-data")
    database_url: str | None = None
    """Any SQLAlchemy URL. Defaults to a SQLite file in `data_dir`."""
    database_pool_size: Annotated[int, Field(ge=1, le=1000)] = limits.DATABASE_POOL_SIZE
    """Connections to a PostgreSQL database this process keeps open, and as many more under load (`db.py`):
    replicas times twice this must stay under the server's `max_connections`."""

    api_keys: str | None = None
    """Comma-separated allow-list of API keys; when unset, any bearer key is accepted as its own tenant."""
    admin_key: SecretStr | None = None
    """The operator key: accepted whatever the allow-list, and the only key that may move every tenant's clock
    at once (`POST /_emulator/clock/advance` with `"all_tenants": true`). Unset: no key may."""

    accept_any_model: bool = False
    """Accept model ids missing from the model table (they get gpt-4o's window and encoding)."""

    thread_retention_days: int = 60
    retention_sweep_seconds: float = 60.0
    """How often (wall clock) the background sweeper deletes threads past retention."""

    max_file_bytes: int = limits.FILE_MAX_BYTES
    max_json_body_bytes: int = limits.JSON_BODY_MAX_BYTES
    """The largest request body of every route but the file upload: a larger one is a 413 (`limits.py` says why
    32 MiB)."""
    seed: int | None = None
    """Seeds ids and every random choice, for reproducible runs."""

    log_level: Annotated[str, BeforeValidator(str.lower), Field(pattern=f"^({'|'.join(LOG_LEVELS)})$")] = "info"
    """How much the server logs (`emulator.logs`): `info` shows a line per request and each run state change."""
    script: Path | None = None
    """A JSON or YAML file of scripted turns (`{"turns": [...]}`) loaded at start for every tenant."""

    run_progression: Annotated[str, Field(pattern=r"^(immediate|polls:[0-9]+)$")] = "immediate"
    """How fast runs move: `immediate` (finished or waiting for tools by the next read) or `polls:N` (after the
    run has been read N times)."""
    latency_ttft_ms: Annotated[int, Field(ge=0)] = 0
    """Streams wait this long (real time) before each model call: time to first token."""
    latency_tokens_per_second: Annotated[float, Field(ge=0)] = 0.0
    """Streams pace message deltas at this rate; 0 sends them at once."""
    poll_after_ms: int = 100
    """The `openai-poll-after-ms` header sent with run responses; the SDK pollers sleep that long."""
    direct_routes: bool = True
    """Serve the API's routes without FastAPI's per-request routing and dependency solving
    (`api.fast_routes`); off, every request goes through FastAPI: the same answers, slower."""

    unsafe_code_execution: bool = False
    """Run code_interpreter cells as plain subprocesses with the server's rights, where the sandbox (Linux
    namespaces through bubblewrap) is not available. Unsafe: anyone who can reach the port runs code here."""
    code_interpreter_timeout_seconds: Annotated[int, Field(ge=1, le=3600)] = 120
    """Wall and CPU seconds per code_interpreter cell (the hosted tool's 120 s)."""

    upstream_url: str | None = None
    """An OpenAI-compatible chat completions API (`http://127.0.0.1:11434/v1`) that answers runs' model calls;
    unset, the stub model does (scripted turns win over either)."""
    upstream_api_key: SecretStr | None = None
    """Sent to the upstream as `Authorization: Bearer …`."""
    upstream_models: str | None = None
    """Which upstream model answers each Assistants model id: `gpt-4o=llama3.1:8b,*=qwen2.5:7b`."""
    upstream_timeout_seconds: Annotated[float, Field(gt=0)] = 120.0
    """How long the upstream may stay silent (connecting, before its first byte, between chunks)."""
    record: Path | None = None
    """Append every upstream turn to this file as a scripted turn (`--script FILE` replays them offline)."""

    @field_validator("data_dir", "script", "record")
    @classmethod
    def _absolute(cls, path: Path | None) -> Path | None:
        """Configured paths are resolved once, at start: nothing later depends on the working directory."""
        return None if path is None else path.expanduser().resolve()

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'emulator.sqlite3').resolve()}"

    def api_key_allow_list(self) -> frozenset[str] | None:
        if not self.api_keys:
            return None
        return frozenset(key.strip() for key in self.api_keys.split(",") if key.strip())

    @property
    def files_dir(self) -> Path:
        return self.data_dir / "files"
