"""Each upstream delta's added delay on its way to the SSE client, with N concurrent streamed runs.

    python bench/bench_upstream_streams.py                          # 100, 300 and 1,000 streams, SQLite
    python bench/bench_upstream_streams.py --streams 100,250,500,1000 --words 1500   # all N streaming at once
    python bench/bench_upstream_streams.py --streams 1000 --database-url postgresql://postgres@127.0.0.1:5432/bench

The fake upstream (`python -m tests.fake_upstream --stamp`, its own process) answers every turn with `--words`
chunks at `--tokens-per-second`, each chunk's text the wall-clock time it was written (SENT_AT). The emulator
(its own process) streams each run; the client (this process, raw sockets, no SDK: its own cost stays small)
reads every `thread.message.delta` and takes its delay: the time it was read minus the time the upstream wrote
it. That is ours (the emulator's parsing, publishing, SSE encoding) plus both loopback hops and the client's
own reading, on a machine whose cores all three processes share. Reported per N: p50/p99 over every delta, and
over the deltas read once every stream had its first (`all_open`: past the burst of N runs starting at once),
and the CPU each process used per delta.

All N runs start at once, and starting one (its run, phases and transactions) costs the emulator about as much
as 80 deltas: N runs take a while to all be streaming. With the default 50 chunks (a second of answer) the first
streams have ended before the last begin past about 100 streams, and `all_open` is empty; for N streams really
streaming together, make the answers last longer than the start (`--words 1500`: 30 s).

The load side is built to cost little per delta, so that it does not decide the figures (its CPU per delta is
printed next to the emulator's): the fake upstream writes every paced chunk from one timer for all streams
(`tests.fake_upstream`'s pacer), each chunk encoded once, a write costing a time stamp; the client reads whatever
arrived in one read, stamps it once and finds the SENT_AT values with one regular expression, parsing nothing
else. At 1,000 streams at 50 tokens/s (50,000 deltas a second) even that is most of a core on its own: the
socket calls, one write and one read per chunk, cannot be shared between streams.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from cpu import cpu_ticks
from loadgen import HOST, api, emu_request, open_conn, percentile
from servers import REPO, Server, start_emulator

_STAMP = re.compile(rb'"value":"(\d+\.\d+) "')
TICKS_PER_SECOND = 100


def start_fake(words: int, rate: float) -> tuple[subprocess.Popen[str], str]:
    fake = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_upstream", "--words", str(words), "--tokens-per-second", str(rate),
         "--stamp"], cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert fake.stdout is not None
    return fake, fake.stdout.readline().strip()


async def one_stream(port: int, assistant_id: str, thread_id: str, delays: list[list[tuple[float, float]]],
                     errors: list[str]) -> None:
    mine: list[tuple[float, float]] = []
    """(when read, delay) of each delta."""
    reader, writer = await open_conn(port)
    try:
        writer.write(emu_request("POST", f"/v1/threads/{thread_id}/runs", {"assistant_id": assistant_id,
                                                                            "stream": True}))
        head = await reader.readuntil(b"\r\n\r\n")
        if int(head[9:12]) != 200:
            errors.append(head[:200].decode(errors="replace"))
            return
        tail = b""
        while not tail.endswith(b"\r\n0\r\n\r\n"):
            data = await reader.read(65536)
            if not data:
                raise ConnectionError("the stream ended before its last chunk")
            now = time.time()
            data = tail + data
            cut = data.rfind(b"\n\n") + 2  # a stamp cut by a read waits for the rest of its event
            for stamp in _STAMP.findall(data, 0, cut):
                mine.append((now, now - float(stamp)))
            tail = data[cut:] if cut > 1 else data
    except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
        errors.append(repr(exc))
    finally:
        writer.close()
        delays.append(mine)


async def round_of(port: int, assistant_id: str, thread_ids: list[str]
                   ) -> tuple[list[list[tuple[float, float]]], list[str]]:
    delays: list[list[tuple[float, float]]] = []
    errors: list[str] = []
    await asyncio.gather(*(one_stream(port, assistant_id, thread_id, delays, errors) for thread_id in thread_ids))
    return delays, errors


def _ms(values: list[float]) -> str:
    ordered = sorted(values)
    if not ordered:
        return "no deltas"
    return f"p50 {percentile(ordered, 50) * 1000:7.1f} ms  p99 {percentile(ordered, 99) * 1000:7.1f} ms"


def measure(server: Server, fake: subprocess.Popen[str], n: int, words: int) -> dict[str, Any]:
    assistant_id = api(server.port, "POST", "/v1/assistants", {"model": "gpt-4o"})["id"]
    thread_ids = [api(server.port, "POST", "/v1/threads", {"messages": [{"role": "user", "content": "Go."}]})["id"]
                  for _ in range(n)]
    before = {name: cpu_ticks(pid) for name, pid in
              (("emulator", server.proc.pid), ("fake upstream", fake.pid), ("client", _self_pid()))}
    started = time.monotonic()
    delays, errors = asyncio.run(round_of(server.port, assistant_id, thread_ids))
    elapsed = time.monotonic() - started
    after = {name: cpu_ticks(pid) for name, pid in
             (("emulator", server.proc.pid), ("fake upstream", fake.pid), ("client", _self_pid()))}
    every = [delay for stream in delays for _read, delay in stream]
    all_open = max((stream[0][0] for stream in delays if stream), default=0.0)
    steady = [delay for stream in delays for read, delay in stream if read > all_open]
    count = max(1, len(every))
    cpu = {name: (after[name] - before[name]) / TICKS_PER_SECOND for name in before}
    return {
        "streams": n, "deltas": len(every), "expected": n * words, "errors": len(errors),
        "error_sample": errors[:3], "seconds": round(elapsed, 1), "all": _ms(every),
        "all_open": _ms(steady), "all_open_deltas": len(steady),
        "cpu_seconds": {name: round(value, 2) for name, value in cpu.items()},
        "cpu_us_per_delta": {name: round(value / count * 1e6) for name, value in cpu.items()},
    }


def _self_pid() -> int:
    import os

    return os.getpid()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", default="100,300,1000", help="comma-separated numbers of concurrent streams")
    parser.add_argument("--words", type=int, default=50, help="chunks per upstream answer (see above: 1500)")
    parser.add_argument("--tokens-per-second", type=float, default=50.0)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    fake, url = start_fake(args.words, args.tokens_per_second)
    with tempfile.TemporaryDirectory() as data_dir:
        server = start_emulator(Path(data_dir), args.database_url, Path(data_dir) / "server.out",
                                env={"EMULATOR_UPSTREAM_URL": url, "EMULATOR_RUN_PROGRESSION": "immediate"})
        try:
            server.wait_ready()
            for n in (int(part) for part in args.streams.split(",")):
                print(json.dumps(measure(server, fake, n, args.words)), flush=True)
        finally:
            server.stop()
            with contextlib.suppress(Exception):
                assert fake.stdin is not None
                fake.stdin.close()
                fake.wait(10)
    print(f"host {HOST}; {args.words} chunks per answer at {args.tokens_per_second:g}/s", flush=True)


if __name__ == "__main__":
    main()
