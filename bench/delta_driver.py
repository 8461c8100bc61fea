"""The `delta` scenario of `instructions.py`: the emulator's instructions per streamed delta of an upstream run,
and per run around its deltas, with uvicorn and its sockets included.

The emulator runs in this (measured) process as it serves: `uvicorn.Server` on a loopback socket, the app on an
upstream URL. The two other parties run in one helper process (`python bench/delta_driver.py --helper`), which
callgrind does not follow (no `--trace-children`), so their instructions are not counted: an upstream that
answers every turn with N one-word chunks (`tests.fake_upstream.build_chunks`, as the fake upstream sends them)
and a client that streams runs and reads them to their end.

They go in lockstep: the upstream writes a chunk only once the client has read the delta of the one before, and
the runs of a round stream one after another. So every delta is read, parsed, published, encoded and written on
its own, whatever the machine's load (callgrind makes the process about 50 times slower, and a process that falls
behind reads several chunks at once and writes several events in one, for fewer instructions per delta), and
nothing waits on a clock. A round of `STREAMS` runs is measured with N and with 2N chunks per answer: what is
constant per run cancels in the difference, which divided by `STREAMS * N` is one delta's cost; the rest of a
run's cost is `(2 * total(N) - total(2N)) / STREAMS`.

Not counted: the work the process does per interval of time rather than per delta, switched off for the
measurement (its intervals set to hours). At 50 tokens/s it is mainly the writer of the text so far
(`live.Flusher`: every `FLUSH_SECONDS`, one transaction that writes the text of every message being generated)
and each call's claim renewal (one transaction per run every `outside.RENEW_EVERY_SECONDS`). The run's own
transactions (its phases, the step and message opened at the first delta, the turn recorded at its end) are in
the per-run figure.

    python bench/delta_driver.py --profile 500     # the same round (no valgrind) under cProfile, main thread
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

STREAMS = 4
"""Runs per round, streamed one after another."""
OFF_SECONDS = 36_000.0
"""The interval of periodic work while measuring: never within a round."""
HEADERS = {"Authorization": "Bearer sk-deltas", "OpenAI-Beta": "assistants=v2", "Content-Type": "application/json"}
_DELTA = b"event: thread.message.delta\n"


async def drive(tree: Path, words: int, database_url: str | None, switch: Callable[[str], None]) -> None:
    """Serve, warm up with one round, then measure one round with instrumentation on (`switch("on")`)."""
    import uvicorn

    from emulator import limits, tokens
    from emulator.app import create_app
    from emulator.runs import live, outside
    from emulator.settings import Settings

    tokens.warm_up()
    for module, name in ((live, "FLUSH_SECONDS"), (outside, "RENEW_EVERY_SECONDS"), (outside, "HELD_SECONDS"),
                         (limits, "RUNNER_SWEEP_SECONDS")):
        setattr(module, name, OFF_SECONDS)  # for this process only
    helper = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--helper", str(words), cwd=str(tree), stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert helper.stdin is not None and helper.stdout is not None
    url = (await helper.stdout.readline()).decode().strip()
    try:
        with tempfile.TemporaryDirectory(prefix="deltas-data-") as tmp:
            settings = Settings(data_dir=Path(tmp), log_level="warning", database_url=database_url, upstream_url=url,
                                retention_sweep_seconds=OFF_SECONDS)
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
            server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning", access_log=False))
            serving = asyncio.create_task(server.serve(sockets=[sock]))
            while not server.started:
                await asyncio.sleep(0.05)
            assistant = (await _api(port, "/v1/assistants", {"model": "gpt-4o"}))["id"]

            async def round_of_runs() -> None:
                threads = [(await _api(port, "/v1/threads", {"messages": [{"role": "user", "content": "Go."}]}))["id"]
                           for _ in range(STREAMS)]
                assert helper.stdin is not None and helper.stdout is not None
                helper.stdin.write(" ".join([str(port), assistant, *threads]).encode() + b"\n")
                done = (await helper.stdout.readline()).decode()
                if not done.startswith("ok"):
                    raise SystemExit(f"the delta client failed: {done}")

            await round_of_runs()
            switch("on")
            await round_of_runs()
            switch("off")
            server.should_exit = True
            await serving
    finally:
        helper.stdin.close()
        await helper.wait()


async def _api(port: int, path: str, body: Any) -> dict[str, Any]:
    def post() -> dict[str, Any]:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        connection.request("POST", path, json.dumps(body), HEADERS)
        response = connection.getresponse()
        raw = response.read()
        connection.close()
        if response.status != 200:
            raise SystemExit(f"POST {path}: {response.status} {raw[:300]!r}")
        answer: dict[str, Any] = json.loads(raw)
        return answer

    return await asyncio.to_thread(post)


# The helper: the upstream and the client in lockstep, its own process, not measured.

class _Lockstep:
    def __init__(self, words: int) -> None:
        from tests.fake_upstream import Reply, build_chunks

        self.chunks = [f"data: {chunk}\n\n".encode() for chunk in
                       build_chunks(Reply(text=["word "] * words), "gpt-4o", include_usage=True)]
        self.chunks.append(b"data: [DONE]\n\n")
        self.words = words
        self.read = asyncio.Event()
        """Set by the client when it has read the delta of the chunk written last."""

    async def upstream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.lower().split(b"\r\n")
                      if line.startswith(b"content-length:"))
        await reader.readexactly(length)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
                     b"Connection: close\r\n\r\n")
        first, *rest = self.chunks  # the role, then one chunk per word, then the end
        for number, chunk in enumerate([first, *rest]):
            writer.write(f"{len(chunk):X}\r\n".encode() + chunk + b"\r\n")
            if 1 <= number <= self.words:
                await writer.drain()
                await self.read.wait()
                self.read.clear()
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        writer.close()

    async def stream(self, port: int, assistant: str, thread: str) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        body = json.dumps({"assistant_id": assistant, "stream": True}).encode()
        head = "".join(f"{name}: {value}\r\n" for name, value in HEADERS.items())
        writer.write(f"POST /v1/threads/{thread}/runs HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}Content-Length: "
                     f"{len(body)}\r\n\r\n".encode() + body)
        received = bytearray()
        seen = 0
        while not received.endswith(b"0\r\n\r\n"):
            data = await reader.read(65536)
            if not data:
                break
            received += data
            count = received.count(_DELTA)
            if count > seen:
                seen = count
                self.read.set()
        writer.close()
        if seen != self.words or b"data: [DONE]" not in received:
            raise SystemExit(f"{thread}: {seen} deltas of {self.words}: {bytes(received[-500:])!r}")


async def _helper(words: int) -> None:
    lockstep = _Lockstep(words)
    server = await asyncio.start_server(lockstep.upstream, "127.0.0.1", 0)
    print(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1", flush=True)
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        port, assistant, *threads = line.split()
        try:
            for thread in threads:
                await lockstep.stream(int(port), assistant, thread)
        except SystemExit as exc:
            print(f"failed: {exc}", flush=True)
            continue
        print("ok", flush=True)


def profile(words: int, top: int) -> None:
    """The measured round under cProfile (no valgrind): where a run's and its deltas' time goes (main thread)."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    tree = Path(__file__).resolve().parent.parent
    asyncio.run(drive(tree, words, None, lambda state: profiler.enable() if state == "on" else profiler.disable()))
    pstats.Stats(profiler).sort_stats("tottime").print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", type=int, metavar="WORDS", help="cProfile one round of WORDS-chunk answers")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--helper", type=int, metavar="WORDS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.helper:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        asyncio.run(_helper(args.helper))
    elif args.profile:
        profile(args.profile, args.top)
    else:
        parser.error("--profile WORDS (the instruction counts: instructions.py --scenarios delta)")


if __name__ == "__main__":
    main()
