#!/usr/bin/env python
"""CPU per request of the emulator's ASGI app, in process, without HTTP or a load generator.

    python bench/profile_app.py [--requests 3000] [--profile SCENARIO] [--top 40]

Builds the app on a fresh SQLite file in a temp dir, runs its lifespan, seeds a thread with messages, then
calls the app directly with ASGI scopes (no socket, no uvicorn) for each scenario and prints the CPU time per
request (`time.process_time`). Next to it, the same for a bare FastAPI endpoint and for a bare Starlette
route, so the figures show what our own code adds. `--profile message_retrieve` (or `run`) prints the cProfile of
that scenario, sorted by cumulative time: where to look before changing anything. The figures are not the HTTP
benchmark's (uvicorn's parsing and the sockets are missing) but they move with it and are steadier.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HEADERS = [
    (b"authorization", b"Bearer sk-profile"),
    (b"openai-beta", b"assistants=v2"),
    (b"content-type", b"application/json"),
]

Asgi = Callable[..., Any]


async def call(app: Asgi, method: str, path: str, body: Any = None, query: str = "") -> tuple[int, bytes]:
    payload = b"" if body is None else json.dumps(body).encode()
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": query.encode(), "root_path": "",
        "headers": [*HEADERS, (b"content-length", str(len(payload)).encode())],
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8000),
    }
    sent = False
    status = 0
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": payload, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


async def api(app: Asgi, method: str, path: str, body: Any = None, query: str = "") -> dict[str, Any]:
    status, raw = await call(app, method, path, body, query)
    if status != 200:
        raise SystemExit(f"{method} {path}: {status} {raw[:300]!r}")
    answer: dict[str, Any] = json.loads(raw)
    return answer


def bare_apps() -> dict[str, Asgi]:
    from servers import bare_app
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def starlette_get(_request: Any) -> JSONResponse:
        return JSONResponse({"object": "bare", "ok": True})

    return {"fastapi": bare_app(), "starlette": Starlette(routes=[Route("/get", starlette_get)])}


Scenario = Callable[[int], tuple[str, str, Any, str]]


async def measure(app: Asgi, scenario: Scenario, count: int, rounds: int = 3) -> float:
    """Microseconds of CPU per request: the best of `rounds` rounds of `count` requests, after a warm-up (the
    machine is shared; the best round is the one least disturbed)."""
    for i in range(min(200, count)):
        await call(app, *scenario(i))
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        for i in range(count):
            status, raw = await call(app, *scenario(i))
            if status != 200:
                raise SystemExit(f"request failed: {status} {raw[:300]!r}")
        best = min(best, (time.process_time() - started) / count * 1e6)
    return best


async def one_run(app: Asgi, assistant_id: str) -> None:
    """Create a thread and run, poll it once: with zero latency the poll finishes it (the HTTP benchmark's run)."""
    run = await api(app, "POST", "/v1/threads/runs", {"assistant_id": assistant_id, "thread": {}})
    polled = await api(app, "GET", f"/v1/threads/{run['thread_id']}/runs/{run['id']}")
    if polled["status"] != "completed":
        raise SystemExit(f"run not completed after one poll: {polled['status']}")


async def measure_runs(app: Asgi, assistant_id: str, count: int, rounds: int = 3) -> float:
    """Microseconds of CPU per run (create + one poll), best of `rounds`."""
    for _ in range(min(50, count)):
        await one_run(app, assistant_id)
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        for _ in range(count):
            await one_run(app, assistant_id)
        best = min(best, (time.process_time() - started) / count * 1e6)
    return best


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="per round (best of 3 rounds)")
    parser.add_argument("--profile", help="print the cProfile of this scenario")
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()

    from emulator import tokens
    from emulator.app import create_app
    from emulator.settings import Settings

    tokens.warm_up()
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(Settings(data_dir=Path(tmp), log_level="warning"))
        async with app.router.lifespan_context(app):
            await run_scenarios(app, args)


async def run_scenarios(app: Any, args: argparse.Namespace) -> None:
    assistant = await api(app, "POST", "/v1/assistants", {"model": "gpt-4o"})
    thread = await api(app, "POST", "/v1/threads", {})
    threads = [(await api(app, "POST", "/v1/threads", {}))["id"] for _ in range(20)]
    message_ids = [
        (await api(app, "POST", f"/v1/threads/{thread['id']}/messages", {"role": "user", "content": f"m{i}"}))["id"]
        for i in range(100)
    ]
    tid = thread["id"]

    scenarios: dict[str, Scenario] = {
        "thread_create": lambda i: ("POST", "/v1/threads", {}, ""),
        "message_create": lambda i: (
            "POST", f"/v1/threads/{threads[i % 20]}/messages", {"role": "user", "content": "hello"}, ""
        ),
        "message_retrieve": lambda i: ("GET", f"/v1/threads/{tid}/messages/{message_ids[i % 100]}", None, ""),
        "message_list": lambda i: ("GET", f"/v1/threads/{tid}/messages", None, "limit=20"),
    }
    bare = bare_apps()
    print(f"{'scenario':<24} {'us CPU/request':>15}")
    for name, bare_app in bare.items():
        cost = await measure(bare_app, lambda i: ("GET", "/get", None, ""), args.requests)
        print(f"{'bare ' + name + ' GET':<24} {cost:>15.0f}")
    cost = await measure(bare["fastapi"], lambda i: ("POST", "/post", {"a": 1}, ""), args.requests)
    print(f"{'bare fastapi POST':<24} {cost:>15.0f}")
    for name, scenario in scenarios.items():
        print(f"{name:<24} {await measure(app, scenario, args.requests):>15.0f}")
    per_run = await measure_runs(app, assistant["id"], args.requests // 10)
    print(f"{'run (create + poll)':<24} {per_run:>15.0f}  per run")
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for i in range(args.requests if args.profile != "run" else args.requests // 10):
            if args.profile == "run":
                await one_run(app, assistant["id"])
            else:
                await call(app, *scenarios[args.profile](i))
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    asyncio.run(main())
