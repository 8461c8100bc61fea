"""The servers under test, each a subprocess on a free loopback port: the emulator (`python -m emulator`)
and the baselines, a bare FastAPI app and a bare sse-starlette app (`python bench/servers.py bare|sse PORT`).
Each is one uvicorn worker with the same settings (`--log-level warning`: no access log)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from cpu import read_rss_kb
from loadgen import HOST, build_request, call

REPO = Path(__file__).resolve().parent.parent


def bare_app() -> Any:
    """The baseline: one GET and one POST, `async def`, small JSON (also measured in process by profile_app)."""
    from fastapi import Body, FastAPI

    app = FastAPI()

    @app.get("/get")
    async def get() -> dict[str, Any]:
        return {"object": "bare", "ok": True}

    @app.post("/post")
    async def post(body: dict[str, Any] = Body(...)) -> dict[str, Any]:
        return {"object": "bare", "ok": True, "keys": len(body)}

    return app


def serve_bare(port: int) -> None:
    import uvicorn

    uvicorn.run(bare_app(), host=HOST, port=port, log_level="warning")


def serve_sse(port: int, hold_s: float) -> None:
    import uvicorn
    from fastapi import FastAPI
    from sse_starlette import EventSourceResponse

    app = FastAPI()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/sse")
    async def sse() -> EventSourceResponse:
        async def events() -> AsyncIterator[dict[str, str]]:
            # one event, then the stream stays open (bounded) like a slow model
            yield {"event": "hello", "data": json.dumps({"object": "bare", "ok": True})}
            await asyncio.sleep(hold_s)
            yield {"event": "done", "data": "[DONE]"}

        return EventSourceResponse(events(), ping=15, sep="\n")

    uvicorn.run(app, host=HOST, port=port, log_level="warning")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    def __init__(self, name: str, argv: list[str], port: int, health: str, log: Path,
                 env: dict[str, str] | None = None) -> None:
        self.name, self.port, self.health = name, port, health
        self.log = log
        self._log_file = log.open("wb")
        self.proc = subprocess.Popen(
            argv, cwd=REPO, stdout=self._log_file, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.log.read_text()[-3000:]}")
            try:
                status, _ = asyncio.run(call(self.port, build_request("GET", self.health)))
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout} s:\n{self.log.read_text()[-3000:]}")

    @property
    def rss_kb(self) -> int:
        return read_rss_kb(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log_file.close()


def start_emulator(data_dir: Path, database_url: str | None, log: Path, env: dict[str, str] | None = None) -> Server:
    port = free_port()
    argv = [sys.executable, "-m", "emulator", "--host", HOST, "--port", str(port), "--data-dir", str(data_dir),
            "--log-level", "warning"]
    if database_url:
        argv += ["--database-url", database_url]
    return Server("emulator", argv, port, "/_emulator/health", log, env)


def start_baseline(kind: str, log: Path, hold_s: float = 0.0) -> Server:
    port = free_port()
    argv = [sys.executable, str(Path(__file__).resolve()), kind, str(port), "--hold", str(hold_s)]
    return Server(f"bare-{kind}", argv, port, "/get" if kind == "bare" else "/health", log)


def main() -> None:
    parser = argparse.ArgumentParser(description="serve a baseline app (started by start_baseline)")
    parser.add_argument("kind", choices=["bare", "sse"])
    parser.add_argument("port", type=int)
    parser.add_argument("--hold", type=float, default=0.0, help="seconds an SSE stream stays open after its event")
    args = parser.parse_args()
    serve_bare(args.port) if args.kind == "bare" else serve_sse(args.port, args.hold)


if __name__ == "__main__":
    main()
