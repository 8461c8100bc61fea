"""The `delta` scenario of `instructions.py`: the emulator's instructions per streamed delta of an upstream run,
and per run around them, with uvicorn and its sockets included.

The emulator runs in this (measured) process as it serves: `uvicorn.Server` on a loopback socket, the app on an
upstream URL. The two other parties run in processes of their own, which callgrind does not follow (no
`--trace-children`), so their instructions are not counted:

- the fake upstream (`python -m tests.fake_upstream --words N --tokens-per-second 50`), which answers every turn
  with N one-word chunks, 20 ms apart, each read by the emulator on its own;
- the client (`python bench/delta_driver.py --client ...`), which opens `STREAMS` streamed runs (a few
  milliseconds apart, so that their deltas do not arrive in the same tick) and reads each to its end.

A round of `STREAMS` runs is measured with N and with 2N chunks per answer: what is constant per run cancels in
the difference, which divided by `STREAMS * N` is one delta's cost (reading the chunk, parsing it, the event
published, encoded and written, plus the writer of the text so far, `live.Flusher`, at its pace); the rest of a
run's cost is `(2 * total(N) - total(2N)) / STREAMS`. The rate is the benchmark's (50 tokens/s) and low enough
for the process under callgrind (about 50 times slower) to keep up, so each delta is read and sent on its own.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

STREAMS = 4
"""Concurrent streamed runs per round."""
TOKENS_PER_SECOND = 50
STAGGER_SECONDS = 0.007
HEADERS = {"Authorization": "Bearer sk-deltas", "OpenAI-Beta": "assistants=v2", "Content-Type": "application/json"}
_DELTA = re.compile(rb"event: thread\.message\.delta\n")


async def drive(tree: Path, words: int, database_url: str | None, switch: Callable[[str], None]) -> None:
    """Serve, warm up with one round, then measure one round with instrumentation on (`switch("on")`)."""
    import uvicorn

    from emulator import tokens
    from emulator.app import create_app
    from emulator.settings import Settings

    tokens.warm_up()
    fake = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_upstream", "--words", str(words), "--tokens-per-second",
         str(TOKENS_PER_SECOND)], cwd=tree, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert fake.stdout is not None and fake.stdin is not None
    url = fake.stdout.readline().strip()
    try:
        with tempfile.TemporaryDirectory(prefix="deltas-data-") as tmp:
            settings = Settings(data_dir=Path(tmp), log_level="warning", database_url=database_url, upstream_url=url)
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
            server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning", access_log=False))
            serving = asyncio.create_task(server.serve(sockets=[sock]))
            while not server.started:
                await asyncio.sleep(0.05)
            assistant = (await _api(port, "/v1/assistants", {"model": "gpt-4o"}))["id"]
            await _round(port, assistant, words)
            switch("on")
            await _round(port, assistant, words)
            switch("off")
            server.should_exit = True
            await serving
    finally:
        fake.stdin.close()
        fake.wait(10)


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


async def _round(port: int, assistant: str, words: int) -> None:
    threads = [(await _api(port, "/v1/threads", {"messages": [{"role": "user", "content": "Go."}]}))["id"]
               for _ in range(STREAMS)]
    client = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--client", str(port), assistant, str(words), *threads,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    out, err = await client.communicate()
    if client.returncode != 0:
        raise SystemExit(f"the delta client failed: {out.decode()} {err.decode()[-2000:]}")


# The client: its own process, not measured.

async def _stream(port: int, assistant: str, thread: str, words: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    body = json.dumps({"assistant_id": assistant, "stream": True}).encode()
    head = "".join(f"{name}: {value}\r\n" for name, value in HEADERS.items())
    writer.write(f"POST /v1/threads/{thread}/runs HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}Content-Length: "
                 f"{len(body)}\r\n\r\n".encode() + body)
    received = bytearray()
    while not received.endswith(b"0\r\n\r\n"):
        data = await reader.read(65536)
        if not data:
            break
        received += data
    writer.close()
    deltas = len(_DELTA.findall(received))
    if deltas != words or b"data: [DONE]" not in received:
        raise SystemExit(f"{thread}: {deltas} deltas of {words}: {bytes(received[-500:])!r}")


async def _client(port: int, assistant: str, words: int, threads: list[str]) -> None:
    streams = []
    for thread in threads:
        streams.append(asyncio.create_task(_stream(port, assistant, thread, words)))
        await asyncio.sleep(STAGGER_SECONDS)
    await asyncio.gather(*streams)


def profile(words: int, top: int) -> None:
    """The measured round under cProfile (no valgrind): where a run's and its deltas' time goes."""
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
    parser.add_argument("--client", nargs="+", metavar="PORT ASSISTANT WORDS THREAD", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.profile:
        profile(args.profile, args.top)
        return
    port, assistant, words, *threads = args.client
    started = time.monotonic()
    asyncio.run(_client(int(port), assistant, int(words), threads))
    print(f"{len(threads)} streams of {words} deltas in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
