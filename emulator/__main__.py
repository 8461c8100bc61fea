"""`assistants-emulator` (and `python -m emulator`): start the server, or `db upgrade`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from pydantic import ValidationError

from emulator import __version__
from emulator.settings import LOG_LEVELS, Settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="assistants-emulator",
        description="A local emulator of the OpenAI Assistants API v2. Every option is also an EMULATOR_* "
        "environment variable (e.g. EMULATOR_PORT).",
    )
    parser.add_argument("--host", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to bind (default 8000)")
    parser.add_argument("--database-url", help="SQLAlchemy URL (default: SQLite in the data dir)")
    parser.add_argument("--database-pool-size", type=int,
                        help="PostgreSQL connections kept per process, as many more under load (default 10)")
    parser.add_argument("--data-dir", help="where the SQLite file and uploaded files live (default ./emulator-data)")
    parser.add_argument("--seed", type=int, help="seed ids and random choices for reproducible runs")
    parser.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        type=str.lower,
        help="how much the server logs: info (default) logs one line per request and every run state change",
    )
    parser.add_argument("--script", help="JSON or YAML file of scripted model turns for every tenant")
    parser.add_argument("--upstream-url", help="OpenAI-compatible API whose chat completions answer runs "
                        "(e.g. http://127.0.0.1:11434/v1); default: the stub model")
    parser.add_argument("--upstream-api-key", help="API key sent to the upstream")
    parser.add_argument("--upstream-models", help="upstream model per Assistants model id, e.g. "
                        "gpt-4o=llama3.1:8b,*=qwen2.5:7b (default: ids pass through)")
    parser.add_argument("--upstream-timeout", type=float, dest="upstream_timeout_seconds",
                        help="seconds the upstream may stay silent before the run fails (default 120)")
    parser.add_argument("--record", metavar="FILE", help="append every upstream turn to FILE as a scripted turn "
                        "(replay with --script FILE); needs --upstream-url")
    parser.add_argument(
        "--unsafe-code-execution", action="store_true", default=None,
        help="run code_interpreter cells without a sandbox, with this server's rights (only where Linux "
        "namespaces are unavailable; anyone who can reach the port can then run code on this machine)",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command")
    db = commands.add_parser("db", help="database maintenance")
    db.add_argument("action", choices=["upgrade"], help="apply the migrations and exit")
    # Also accepted after the command (`db upgrade --database-url ...`); SUPPRESS keeps a value given before it.
    db.add_argument("--database-url", default=argparse.SUPPRESS, help="SQLAlchemy URL of the database to upgrade")
    db.add_argument("--data-dir", default=argparse.SUPPRESS, help="data dir whose SQLite file to upgrade")
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {
        name: value
        for name in ("host", "port", "database_url", "database_pool_size", "data_dir", "seed", "log_level", "script",
                     "unsafe_code_execution", "upstream_url", "upstream_api_key", "upstream_models",
                     "upstream_timeout_seconds", "record")
        if (value := getattr(args, name)) is not None
    }
    try:
        return Settings(**overrides)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, item['loc']))}: {item['msg']}" for item in error.errors())
        _refuse(f"bad setting: {problems}")


def _refuse(message: str) -> NoReturn:
    print(f"assistants-emulator: {message}", file=sys.stderr, flush=True)
    raise SystemExit(2)


def _check_upstream(settings: Settings) -> None:
    """Bad upstream settings stop the start with one line (the backend itself is made by the app)."""
    from emulator.upstream.backend import UpstreamBackend

    key = settings.upstream_api_key.get_secret_value() if settings.upstream_api_key else None
    try:
        backend = UpstreamBackend.from_settings(
            settings.upstream_url, key, settings.upstream_models, record=settings.record,
            timeout_seconds=settings.upstream_timeout_seconds,
        )
    except ValueError as error:
        _refuse(str(error))
    if backend is not None:
        import asyncio

        asyncio.run(backend.aclose())


def _upgrade(settings: Settings) -> None:
    from emulator import migrate
    from emulator.db import Database

    _ensure_database(settings)
    db = Database.connect(settings.resolved_database_url())
    migrate.upgrade(db.engine)
    db.dispose()
    print(f"database at head: {db.engine.url.render_as_string(hide_password=True)}")


def _ensure_database(settings: Settings) -> None:
    """A PostgreSQL database that does not exist is created (when the user may); otherwise one line and exit 2."""
    from emulator.pg_setup import StartupError, ensure_database

    try:
        if ensure_database(settings.resolved_database_url()):
            print(f"created the database named in {_shown_url(settings)}", flush=True)
    except StartupError as error:
        _refuse(str(error))


def _shown_url(settings: Settings) -> str:
    """The database URL with its password, if any, as ***."""
    from sqlalchemy.engine import make_url

    from emulator.db import normalize_url

    return make_url(normalize_url(settings.resolved_database_url())).render_as_string(hide_password=True)


def banner(settings: Settings) -> list[str]:
    """What the server prints at start: where to point a client, where its state lives, where the docs are."""
    host = settings.host if settings.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    root = f"http://{'[' + host + ']' if ':' in host else host}:{settings.port}"
    data_dir = settings.data_dir.resolve()
    any_key = settings.api_key_allow_list() is None
    keys = "any API key; each key is its own tenant" if any_key else "a key listed in EMULATOR_API_KEYS"
    key = "sk-local" if any_key else "<key>"
    holds = "database and uploaded files" if settings.database_url is None else "uploaded files"
    return [
        f"assistants-emulator {__version__}, serving on {settings.host}:{settings.port} until Ctrl+C",
        f"  base URL:      {root}/v1  ({keys})",
        f"  data dir:      {data_dir}  ({holds})",
        f"  database:      {_shown_url(settings)}",
        f"  model:         {model_backend(settings)}",
        f"  API docs:      {root}/docs",
        f"  control plane: {root}/_emulator  (faults, scripts, clock, usage)",
        f'  client:        client = openai.OpenAI(base_url="{root}/v1", api_key="{key}")',
    ]


def model_backend(settings: Settings) -> str:
    """Which model answers runs, as the banner says it."""
    if not settings.upstream_url:
        return "the stub model (scripted turns first)"
    from emulator.upstream.config import redact_url

    shown = f"upstream {redact_url(settings.upstream_url.strip())}"
    if settings.upstream_models:
        shown += f" (models {settings.upstream_models})"
    if settings.record is not None:
        shown += f", recording to {settings.record}"
    return shown + " (scripted turns first)"


def _serve(settings: Settings) -> None:
    import uvicorn

    from emulator.app import create_app

    _check_upstream(settings)
    _ensure_database(settings)
    print("\n".join(banner(settings)), flush=True)
    uvicorn.run(
        create_app(settings), host=settings.host, port=settings.port, log_level=settings.log_level, access_log=False
    )


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    settings = _settings(args)
    if args.command == "db":
        _upgrade(settings)
    else:
        _serve(settings)


if __name__ == "__main__":
    main(sys.argv[1:])
