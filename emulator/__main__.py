"""`assistants-emulator` (and `python -m emulator`): start the server, or `db upgrade`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from emulator import __version__
from emulator.settings import Settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="assistants-emulator",
        description="A local emulator of the OpenAI Assistants API v2. Every option is also an EMULATOR_* "
        "environment variable (e.g. EMULATOR_PORT).",
    )
    parser.add_argument("--host", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to bind (default 8000)")
    parser.add_argument("--database-url", help="SQLAlchemy URL (default: SQLite in the data dir)")
    parser.add_argument("--data-dir", help="where the SQLite file and uploaded files live (default ./emulator-data)")
    parser.add_argument("--seed", type=int, help="seed ids and random choices for reproducible runs")
    parser.add_argument("--log-level", help="uvicorn log level (default info)")
    parser.add_argument("--script", help="JSON or YAML file of scripted model turns for every tenant")
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
        for name in ("host", "port", "database_url", "data_dir", "seed", "log_level", "script", "unsafe_code_execution")
        if (value := getattr(args, name)) is not None
    }
    return Settings(**overrides)


def _upgrade(settings: Settings) -> None:
    from emulator import migrate
    from emulator.db import Database

    db = Database.connect(settings.resolved_database_url())
    migrate.upgrade(db.engine)
    db.dispose()
    print(f"database at head: {db.engine.url.render_as_string(hide_password=True)}")


def _serve(settings: Settings) -> None:
    import uvicorn
    from sqlalchemy.engine import make_url

    from emulator.app import create_app
    from emulator.db import normalize_url

    url = make_url(normalize_url(settings.resolved_database_url())).render_as_string(hide_password=True)
    print(f"assistants-emulator {__version__}", flush=True)
    print(f"  base URL: http://{settings.host}:{settings.port}/v1", flush=True)
    print(f"  database: {url}", flush=True)  # the password, if any, shows as ***
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=settings.log_level)


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    settings = _settings(args)
    if args.command == "db":
        _upgrade(settings)
    else:
        _serve(settings)


if __name__ == "__main__":
    main(sys.argv[1:])
