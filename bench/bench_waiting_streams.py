"""What streams waiting on a latency profile cost: N streamed runs (default 2,000) whose model takes long to its
first token (`EMULATOR_LATENCY_TTFT_MS`, default 120 s) are opened; once every one waits (it has sent
`thread.message.in_progress`), the emulator process's CPU is read from /proc over a window (default 10 s), as
a percentage of one core (and, on PostgreSQL, that of the database's backends).

    python bench/bench_waiting_streams.py [--streams 2000] [--ttft-ms 120000] [--window 10]
                                          [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/DB]

Like bench.py: the emulator is `python -m emulator` of this checkout (cwd), one uvicorn worker, on a fresh temp
data dir (SQLite unless --database-url: give a fresh, empty database); streams are raw asyncio HTTP/1.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import tempfile
import time
from pathlib import Path

from cpu import cpu_ticks, db_ticks, read_rss_kb
from loadgen import api, api_many, emu_request, open_conn
from servers import Server, start_emulator

OPEN_CONCURRENCY = 128
WAITING = b"event: thread.message.in_progress"


async def _open_waiting(port: int, request: bytes, gate: asyncio.Semaphore, timeout: float) -> asyncio.StreamWriter:
    """A stream read until its run waits for the model's first token; returns its connection, held open."""
    async with gate:
        reader, writer = await open_conn(port)
        writer.write(request)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        if int(head[9:12]) != 200:
            raise RuntimeError(head[:200].decode(errors="replace"))
        seen = b""
        while WAITING not in seen:
            chunk = await asyncio.wait_for(reader.read(65536), timeout)
            if not chunk:
                raise RuntimeError(f"the stream ended before it waited: {seen[-300:]!r}")
            seen = seen[-4096:] + chunk
        return writer


def _ticks_per_second() -> int:
    return os.sysconf("SC_CLK_TCK")


async def _measure(server: Server, requests: list[bytes], window: float, dbname: str | None) -> dict[str, float]:
    gate = asyncio.Semaphore(OPEN_CONCURRENCY)
    started = time.monotonic()
    opening = [asyncio.create_task(_open_waiting(server.port, r, gate, 300)) for r in requests]
    writers = await asyncio.gather(*opening)
    opened_in = time.monotonic() - started
    await asyncio.sleep(2.0)  # each stream's look after subscribing to its run is over
    pid = server.proc.pid
    ticks, database, at = cpu_ticks(pid), db_ticks(dbname), time.monotonic()
    await asyncio.sleep(window)
    elapsed = time.monotonic() - at
    used = cpu_ticks(pid) - ticks
    database_after = db_ticks(dbname)
    database_used = sum(database_after.get(p, t) - t for p, t in database.items())
    rss = read_rss_kb(pid)
    for writer in writers:
        writer.close()
    tick = _ticks_per_second()
    return {
        "streams": len(writers), "opened_in_s": opened_in, "window_s": elapsed,
        "server_cpu_pct_of_core": 100.0 * used / tick / elapsed,
        "database_cpu_pct_of_core": 100.0 * database_used / tick / elapsed,
        "server_rss_mb": rss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=2000)
    parser.add_argument("--ttft-ms", type=int, default=120_000)
    parser.add_argument("--window", type=float, default=10.0, help="seconds of CPU measured while all wait")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (server log, SQLite file)")
    args = parser.parse_args()
    if args.streams * 0.001 > args.ttft_ms / 1000 / 4:
        parser.error("--ttft-ms must leave the streams waiting well past the measured window")
    folder = Path(tempfile.mkdtemp(prefix="bench-waiting-"))
    server = start_emulator(folder / "data", args.database_url, folder / "emulator.log",
                            {"EMULATOR_LATENCY_TTFT_MS": str(args.ttft_ms)})
    try:
        server.wait_ready()
        assistant = api(server.port, "POST", "/v1/assistants", {"model": "gpt-4o", "name": "bench"})["id"]
        body = {"messages": [{"role": "user", "content": "take your time"}]}
        threads = [t["id"] for t in api_many(server.port, [emu_request("POST", "/v1/threads", body)] * args.streams)]
        requests = [emu_request("POST", f"/v1/threads/{t}/runs", {"assistant_id": assistant, "stream": True})
                    for t in threads]
        dbname = args.database_url.rsplit("/", 1)[-1].split("?")[0] if args.database_url else None
        figures = asyncio.run(_measure(server, requests, args.window, dbname))
    finally:
        server.stop()
        if not args.keep:
            with contextlib.suppress(OSError):
                shutil.rmtree(folder)
    database = "PostgreSQL" if args.database_url else "SQLite"
    print(f"{figures['streams']} streams waiting ({database}, ttft {args.ttft_ms} ms), opened in "
          f"{figures['opened_in_s']:.1f} s; over {figures['window_s']:.1f} s: server "
          f"{figures['server_cpu_pct_of_core']:.1f}% of a core"
          + (f", database backends {figures['database_cpu_pct_of_core']:.1f}%" if args.database_url else "")
          + f"; server RSS {figures['server_rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
