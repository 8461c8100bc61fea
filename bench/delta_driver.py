"""The `delta` scenario of `instructions.py`: the emulator's instructions per streamed delta of an upstream run,
and per run around them, with uvicorn and its sockets included.

The emulator runs in this (measured) process as it serves: `uvicorn.Server` on a loopback socket, the app on an
upstream URL. The two other parties run in processes of their own, which callgrind does not follow (no
`--trace-children`), so their instructions are not counted:

- the fake upstream (`python -m tests.fake_upstream --words N --tokens-per-second 5`), which answers every turn
  with N one-word chunks, 200 ms apart;
- the client (`python bench/delta_driver.py --client ...`), which opens `STREAMS` streamed runs (half a chunk
  interval apart, so that their deltas do not arrive together) and reads each to its end.

A round of `STREAMS` runs is measured with N and with 2N chunks per answer: what is constant per run cancels in
the difference, which divided by `STREAMS * N` is one delta's cost (reading the chunk, parsing it, the event
published, encoded and written); the rest of a run's cost is `(2 * total(N) - total(2N)) / STREAMS`.

Instruction counts only stay the same from run to run if every delta is read and sent on its own: a process that
falls behind reads several chunks at once and writes several events at once, and counts fewer instructions per
delta. So the round runs in slow motion: 2 streams at 5 chunks a second (the process under callgrind, about 50
times slower, keeps up even on a loaded machine), with the intervals of the process's periodic work stretched by
the same factor (50 / 5: the writer of the text so far, `live.FLUSH_SECONDS`; a call's claim renewal,
`outside.RENEW_EVERY_SECONDS`, and the claim's length, `outside.HELD_SECONDS`; the runner's sweep,
`limits.RUNNER_SWEEP_SECONDS`), so that each costs per delta what it costs at the benchmark's 50 tokens a second.
What stays per second (the event loop's own timers, uvicorn's, sse-starlette's) is counted over fewer deltas
than at full speed: the figure is for comparing trees, not for dividing a core by. The client checks that all
but `SHARED_AT_MOST` deltas of each stream came in an HTTP chunk of their own (the driver fails otherwise).
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

STREAMS = 2
"""Concurrent streamed runs per round."""
TOKENS_PER_SECOND = 5
BENCHMARK_TOKENS_PER_SECOND = 50
SHARED_AT_MOST = 3
"""Deltas of a stream that may go out with others: the first goes with its message's opening events, and the
second often with it (the opening's transaction is slow under callgrind, and the next chunk waits meanwhile)."""
STAGGER_SECONDS = 1 / TOKENS_PER_SECOND / STREAMS
HEADERS = {"Authorization": "Bearer sk-deltas", "OpenAI-Beta": "assistants=v2", "Content-Type": "application/json"}
_DELTA = re.compile(rb"event: thread\.message\.delta\n")


async def drive(tree: Path, words: int, database_url: str | None, switch: Callable[[str], None]) -> None:
    """Serve, warm up with one round, then measure one round with instrumentation on (`switch("on")`)."""
    import uvicorn

    from emulator import limits, tokens
    from emulator.app import create_app
    from emulator.runs import live, outside
    from emulator.settings import Settings

    tokens.warm_up()
    slow_motion = BENCHMARK_TOKENS_PER_SECOND / TOKENS_PER_SECOND
    stretched = ((live, "FLUSH_SECONDS"), (outside, "RENEW_EVERY_SECONDS"), (outside, "HELD_SECONDS"),
                 (limits, "RUNNER_SWEEP_SECONDS"))
    for module, name in stretched:
        setattr(module, name, getattr(module, name) * slow_motion)  # for this process only
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
    alone = received.count(b"\r\nevent: thread.message.delta\n")
    if deltas - alone > SHARED_AT_MOST:
        shared = [m.start() for m in _DELTA.finditer(received) if received[m.start() - 2 : m.start()] != b"\r\n"]
        raise SystemExit(f"{thread}: {deltas - alone} of {deltas} deltas shared an HTTP chunk (the server fell behind:"
                         f" a quieter machine, or a slower pace): {[bytes(received[i - 300 : i]) for i in shared]}")


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
