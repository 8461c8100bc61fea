#!/usr/bin/env python
"""Instructions per request of the emulator's ASGI app, counted by valgrind's callgrind.

    python bench/instructions.py [--scenarios thread_create,message_list,...] [--requests 200]
                                 [--database-url postgresql://postgres@127.0.0.1:5432/test] [--tree PATH]

Why: on this shared 2-core machine wall-clock and even CPU-time figures swing by tens of percent from one run to
the next, while the number of instructions a process executes is the same on every run. This script runs each
scenario in process (as `profile_app.py` does: ASGI calls, no socket, no uvicorn) under
`valgrind --tool=callgrind`, twice: with N and with 2N measured requests. Instrumentation is switched on only
around the measured loop (`callgrind_control -i on/off`), so start-up, seeding and warm-up are not counted, and
the difference of the two totals divided by N is the cost of one request, without whatever is constant per run.

What it is not: time. An instruction count misses what does not show as instructions of this process: cache
misses and other memory behaviour, syscalls and the kernel's work, waiting on PostgreSQL (its backends are other
processes; only the client side is counted). A change that saves instructions saves time in the same proportion
only when it does not change those; check a real win with `bench.py` as well.

So that counts do not drift with the clock or from run to run: the control cache's time-driven reload is
disabled (`limits.CONTROL_CACHE_SECONDS`), string hashes are fixed (PYTHONHASHSEED=0), and the garbage
collector's generations are frozen after the warm-up, so collections during the loop scan only the objects the
loop made. What is left (ids are random, for one) moves a figure by up to ~1.5% between runs of the same tree:
smaller differences are noise.

`--tree PATH` measures another checkout (an old commit's `git worktree`): the driver runs with PYTHONPATH=PATH,
imports that tree's `emulator` and its `bench/profile_app.py` (its `api`, `call` and `one_run`), so the same
script gives a before/after pair. Without it, the tree this script lives in. With `--database-url` (an admin
URL) every run gets a fresh PostgreSQL database, dropped afterwards; otherwise a SQLite file in a temp dir.

`delta` is different (`delta_driver.py`): the emulator serves through uvicorn in the measured process, the fake
upstream and the client run in processes of their own (not counted), and N is the number of upstream chunks per
answer (`--words`, default 50): it prints the instructions per streamed delta and per run around its deltas.

Needs valgrind (a development tool, not installed by `.ci/run`): `apt-get install valgrind`. Under callgrind
Python runs about 50 times slower; the default N (200; 20 for `run` and `stream`) keeps a scenario near a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
SCENARIOS = ("thread_create", "message_create", "message_retrieve", "message_list", "run", "stream", "delta")
SLOW = ("run", "stream")
"""Scenarios that cost tens of requests each: they use a tenth of `--requests`."""
WARM_UP = 200
"""Requests before the measured loop (a tenth for the slow scenarios), the same for N and 2N."""
TOTALS_PREFIX = "totals:"


def main() -> None:
    args = parse_args()
    if args.drive:
        scenario, count = args.drive
        asyncio.run(drive(Path(args.tree).resolve(), scenario, int(count), args.database_url, args.instrument))
        return
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("valgrind is not installed: apt-get install valgrind")
    tree = Path(args.tree).resolve()
    scenarios = [name.strip() for name in args.scenarios.split(",") if name.strip()]
    unknown = sorted(set(scenarios) - set(SCENARIOS))
    if unknown:
        raise SystemExit(f"unknown scenarios: {', '.join(unknown)} (known: {', '.join(SCENARIOS)})")
    backend = "PostgreSQL" if args.database_url else "SQLite"
    print(f"tree {tree} ({tree_commit(tree)}), {backend}, instructions (callgrind Ir) per request")
    print(f"{'scenario':<18} {'N':>5} {'Ir/request':>12} {'Ir (N run)':>14} {'seconds':>8}")
    for scenario in scenarios:
        count = max(1, args.requests // 10) if scenario in SLOW else args.requests
        if scenario == "delta":
            count = args.words
        started = time.monotonic()
        first = count_instructions(tree, scenario, count, args.database_url)
        second = count_instructions(tree, scenario, 2 * count, args.database_url)
        seconds = time.monotonic() - started
        if scenario == "delta":
            print_delta(count, first, second, seconds)
            continue
        per_request = (second - first) / count
        print(f"{scenario:<18} {count:>5} {per_request:>12,.0f} {first:>14,} {seconds:>8.0f}", flush=True)


def print_delta(words: int, first: int, second: int, seconds: float) -> None:
    """The `delta` scenario's two figures (`delta_driver`): per streamed delta, and per run around its deltas."""
    from delta_driver import STREAMS

    per_delta = (second - first) / (STREAMS * words)
    per_run = (2 * first - second) / STREAMS
    print(f"{'delta':<18} {words:>5} {per_delta:>12,.0f} {first:>14,} {seconds:>8.0f}   (per streamed delta)")
    print(f"{'delta: per run':<18} {words:>5} {per_run:>12,.0f} {'':>14} {'':>8}   (the rest of an upstream run)",
          flush=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated, default: all")
    parser.add_argument("--requests", type=int, default=200, help="N (a tenth of it for run and stream)")
    parser.add_argument("--database-url", help="PostgreSQL admin URL: a fresh database per run, dropped after")
    parser.add_argument("--words", type=int, default=50, help="delta: N upstream chunks per answer (and 2N)")
    parser.add_argument("--tree", default=str(HERE.parent), help="the checkout to measure (default: this one)")
    parser.add_argument("--drive", nargs=2, metavar=("SCENARIO", "N"), help=argparse.SUPPRESS)
    parser.add_argument("--instrument", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args()


def tree_commit(tree: Path) -> str:
    found = subprocess.run(["git", "-C", str(tree), "describe", "--always", "--dirty"], capture_output=True, text=True)
    return found.stdout.strip() or "not a git checkout"


def count_instructions(tree: Path, scenario: str, count: int, admin_url: str | None) -> int:
    """The instructions callgrind counted in the measured loop of one driver run of `count` requests."""
    with tempfile.TemporaryDirectory(prefix="instructions-") as tmp, database(admin_url) as url:
        out = Path(tmp) / "callgrind.out"
        command = [
            "valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
            sys.executable, str(Path(__file__).resolve()), "--drive", scenario, str(count), "--tree", str(tree),
            "--instrument", *(["--database-url", url] if url else []),
        ]
        env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONHASHSEED": "0"}
        done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{scenario} with {count} requests failed:\n{done.stderr[-3000:]}")
        return read_totals(out)


@contextmanager
def database(admin_url: str | None) -> Iterator[str | None]:
    if admin_url is None:
        yield None
        return
    from emulator.testing import postgres_database

    with postgres_database(admin_url) as url:
        yield url


def read_totals(out: Path) -> int:
    for line in out.read_text().splitlines():
        if line.startswith(TOTALS_PREFIX):
            return int(line.split()[1])
    raise SystemExit(f"no totals in {out}")


# The driver: runs under valgrind, in the measured tree's code.

Asgi = Callable[..., Any]
Request = Callable[[int], Awaitable[None]]


async def drive(tree: Path, scenario: str, count: int, database_url: str | None, instrument: bool) -> None:
    profile_app = load_profile_app(tree)
    if scenario == "delta":
        driver = load_module("delta_driver", HERE / "delta_driver.py")
        await driver.drive(tree, count, database_url, lambda state: switch_instrumentation(instrument, state))
        return
    from emulator import limits, tokens
    from emulator.app import create_app
    from emulator.settings import Settings

    setattr(limits, "CONTROL_CACHE_SECONDS", 1e9)  # noqa: B010 (a Final constant, changed for this process only)
    tokens.warm_up()
    with tempfile.TemporaryDirectory(prefix="instructions-data-") as tmp:
        app = create_app(Settings(data_dir=Path(tmp), log_level="warning", database_url=database_url))
        async with app.router.lifespan_context(app):
            request = await prepare(app, profile_app, scenario, count)
            warm_up = WARM_UP // 10 if scenario in SLOW else WARM_UP
            for i in range(warm_up):
                await request(count + i)
            gc.freeze()
            switch_instrumentation(instrument, "on")
            for i in range(count):
                await request(i)
            switch_instrumentation(instrument, "off")


def load_profile_app(tree: Path) -> ModuleType:
    """The measured tree's `bench/profile_app.py`, with that tree first on the path (not this script's)."""
    sys.path[:] = [str(tree), str(tree / "bench"), *(p for p in sys.path if Path(p or ".").resolve() != HERE)]
    import emulator

    if not Path(emulator.__file__ or "").resolve().is_relative_to(tree):
        raise SystemExit(f"emulator imported from {emulator.__file__}, not from {tree}")
    return load_module("profile_app", tree / "bench" / "profile_app.py")


def load_module(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"no {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def prepare(app: Asgi, profile_app: ModuleType, scenario: str, count: int) -> Request:
    """Seeds what the scenario needs and returns its request `i` (warm-up requests get i >= count)."""
    api, call = profile_app.api, profile_app.call
    assistant = (await api(app, "POST", "/v1/assistants", {"model": "gpt-4o"}))["id"]
    thread = (await api(app, "POST", "/v1/threads", {}))["id"]
    threads = [(await api(app, "POST", "/v1/threads", {}))["id"] for _ in range(20)]
    messages = [
        (await api(app, "POST", f"/v1/threads/{thread}/messages", {"role": "user", "content": f"m{i}"}))["id"]
        for i in range(100)
    ]
    fresh = []
    if scenario == "stream":
        fresh = [(await api(app, "POST", "/v1/threads", {}))["id"] for _ in range(count + WARM_UP // 10)]

    async def ok(method: str, path: str, body: Any = None, query: str = "") -> None:
        status, raw = await call(app, method, path, body, query)
        if status != 200:
            raise SystemExit(f"{method} {path}: {status} {raw[:300]!r}")

    async def stream(i: int) -> None:
        body = {"assistant_id": assistant, "stream": True}
        await stream_to_end(app, profile_app.HEADERS, f"/v1/threads/{fresh[i]}/runs", body)

    requests: dict[str, Request] = {
        "thread_create": lambda i: ok("POST", "/v1/threads", {}),
        "message_create": lambda i: ok(
            "POST", f"/v1/threads/{threads[i % 20]}/messages", {"role": "user", "content": "hello"}
        ),
        "message_retrieve": lambda i: ok("GET", f"/v1/threads/{thread}/messages/{messages[i % 100]}"),
        "message_list": lambda i: ok("GET", f"/v1/threads/{thread}/messages", None, "limit=20"),
        "run": lambda i: profile_app.one_run(app, assistant),
        "stream": stream,
    }
    return requests[scenario]


async def stream_to_end(app: Asgi, headers: list[tuple[bytes, bytes]], path: str, body: Any) -> None:
    """A streaming request read to its end, with `profile_app`'s headers (its API key: threads belong to one).
    Not `profile_app.call`: its `receive` answers `http.disconnect` as
    soon as the body is read, and sse-starlette then ends the stream after its first event."""
    payload = json.dumps(body).encode()
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [*headers, (b"content-length", str(len(payload)).encode())],
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8000),
    }
    finished = asyncio.Event()
    sent = False
    status = 0
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": payload, "more_body": False}
        await finished.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                finished.set()

    await app(scope, receive, send)
    raw = b"".join(chunks)
    if status != 200 or not raw.rstrip().endswith(b"data: [DONE]"):
        raise SystemExit(f"stream {path}: {status} {raw[-300:]!r}")


def switch_instrumentation(instrument: bool, state: str) -> None:
    if instrument:
        subprocess.run(["callgrind_control", "-i", state, str(os.getpid())], check=True, capture_output=True)


if __name__ == "__main__":
    main()
