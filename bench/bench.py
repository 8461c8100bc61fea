#!/usr/bin/env python
"""Benchmark of the emulator against a bare FastAPI app, with one raw asyncio HTTP/1.1 load generator.

    python bench/bench.py [--quick] [--database-url URL] [--connections 32] [--streams N]

Starts, on free ports of 127.0.0.1, the emulator (`python -m emulator`, fresh temp data dir, SQLite unless
--database-url) and a bare FastAPI app (one GET, one POST; uvicorn, one worker, same settings), seeds the
data, drives each scenario with the same generator (its own process, C keep-alive connections, fixed
duration after a warm-up), and prints requests/s, p50/p99, errors, the ratio to the bare endpoint of the same
method, and the targets of issues 2 and 3 with PASS/MISS. Only loopback is ever contacted; every loop is
bounded in count and time. The machine has 2 cores shared by the server and the generator: absolute numbers
include that contention (the bare app suffers it the same way).

The parts: `servers` (the processes under test), `loadgen` and `streaming` (the generator and its scenarios),
`seeding` (the data), `cpu` (what each phase costs), `report` (the table and the targets).
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import resource
import shutil
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from cpu import CpuMeter
from loadgen import PHASE_GRACE_S, Result, api, build_request, emu_request, load_runs, load_static
from report import print_report, print_streams
from seeding import create_threads, seed
from servers import Server, start_baseline, start_emulator
from streaming import OPEN_CONCURRENCY, hold_streams, sse_first_event


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 65536, hard))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 s per scenario, 0.5 s warm-up, fewer SSE samples")
    parser.add_argument("--database-url", help="run the emulator on this database (e.g. a fresh PostgreSQL db)")
    parser.add_argument("--connections", "-c", type=int, default=32)
    parser.add_argument("--duration", type=float, help="seconds measured per scenario (default 5, quick 2)")
    parser.add_argument("--warmup", type=float, help="seconds of warm-up per scenario (default 1, quick 0.5)")
    parser.add_argument("--sse-samples", type=int, help="sequential streaming runs (default 200, quick 50)")
    parser.add_argument("--streams", type=int, default=0, help="also hold N concurrent slow-reading streams")
    parser.add_argument("--stream-wait", choices=["tokens", "ttft"], default="tokens",
                        help="which latency setting keeps the emulator's streams open (see run_streams)")
    parser.add_argument("--streams-only", action="store_true", help="with --streams: skip the other scenarios")
    parser.add_argument("--stream-hold", type=float, default=10.0,
                        help="seconds to keep all N streams open (sampling the server's RSS) before closing them")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, SQLite file)")
    args = parser.parse_args()
    args.duration = args.duration or (2.0 if args.quick else 5.0)
    args.warmup = args.warmup if args.warmup is not None else (0.5 if args.quick else 1.0)
    args.sse_samples = args.sse_samples or (50 if args.quick else 200)
    if not 1 <= args.connections <= 1024 or not 0 < args.duration <= 120 or not 0 <= args.streams <= 10000:
        parser.error("connections 1..1024, duration 0..120 s, streams 0..10000")
    raise_fd_limit()

    tmp = Path(tempfile.mkdtemp(prefix="emulator-bench-"))
    servers: list[Server] = []
    pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    C, W, D = args.connections, args.warmup, args.duration

    generator_pid = 0
    dbname: str | None = None
    if args.database_url:
        from sqlalchemy.engine import make_url

        dbname = make_url(args.database_url).database
    bare: Server | None = None

    def measure(label: str, server: Server, fn: Callable[..., Result], *fn_args: Any) -> Result:
        print(f"  {label} ...", end="", flush=True)
        meter = CpuMeter(server.proc.pid, generator_pid, dbname if server is not bare else None)
        result = pool.submit(fn, server.port, *fn_args).result(timeout=W + D + PHASE_GRACE_S + 200)
        result.update(meter.stop(result["total"]))
        print(f" {result['rps']:,.0f}/s, p50 {result['p50']:.2f} ms, p99 {result['p99']:.2f} ms, "
              f"{result['errors']} errors; CPU server {result['srv_cpu']:.0f}%, generator {result['gen_cpu']:.0f}%, "
              + (f"PostgreSQL {result['db_cpu']:.0f}% ({result['db_ms_per_req']:.2f} ms/req), " if dbname else "")
              + f"other processes {result['other_cpu']:.0f}%", flush=True)
        return result

    try:
        print(f"temp dir {tmp}; starting the bare FastAPI app and the emulator ...", flush=True)
        bare = start_baseline("bare", tmp / "bare.log")
        emu = start_emulator(tmp / "data", args.database_url, tmp / "emulator.log")
        servers += [bare, emu]
        bare.wait_ready()
        emu.wait_ready()
        generator_pid = pool.submit(os.getpid).result()  # spawns the generator process now
        if args.streams and args.streams_only:
            print_streams(run_streams(args, tmp, pool, servers))
            return 0
        rss = {"bare_start": bare.rss_kb, "emulator_start": emu.rss_kb}
        results: dict[str, Result] = {}
        extras: dict[str, Any] = {"rss": rss}

        print("baseline", flush=True)
        bare_get = [build_request("GET", "/get")]
        bare_post = [build_request("POST", "/post", {"role": "user", "content": "hello"})]
        results["bare GET"] = measure("bare GET", bare, load_static, bare_get, C, W, D)
        results["bare POST"] = measure("bare POST", bare, load_static, bare_post, C, W, D)

        print("seeding the emulator", flush=True)
        seeded = seed(emu.port, args.database_url, tmp / "data")
        extras["seed_1k_s"], extras["seed_100k_s"] = seeded.seconds_1k, seeded.seconds_100k
        t_small, t_big = seeded.small_thread, seeded.big_thread
        print(f"  1,000 messages through the API in {extras['seed_1k_s']:.1f} s, 99,999 rows through the store in "
              f"{extras['seed_100k_s']:.1f} s", flush=True)

        print("emulator", flush=True)
        results["thread create"] = measure("thread create", emu, load_static,
                                           [emu_request("POST", "/v1/threads", {})], C, W, D)
        results["message create"] = measure(
            "message create", emu, load_static,
            [emu_request("POST", f"/v1/threads/{t}/messages", {"role": "user", "content": "hello from the benchmark"})
             for t in seeded.message_threads], C, W, D)
        results["message retrieve"] = measure(
            "message retrieve", emu, load_static,
            [emu_request("GET", f"/v1/threads/{t_small}/messages/{m['id']}") for m in seeded.small_messages[::10]],
            C, W, D)
        results["message list (1k msgs)"] = measure(
            "message list limit 20, 1k thread", emu, load_static,
            [emu_request("GET", f"/v1/threads/{t_small}/messages?limit=20")], C, W, D)
        results["message list (100k msgs)"] = measure(
            "message list limit 20, 100k thread", emu, load_static,
            [emu_request("GET", f"/v1/threads/{t_big}/messages?limit=20")], C, W, D)

        pool_size = min(20_000, int(results["thread create"]["rps"] * (W + D) * 0.6) + 300)
        print(f"  pre-creating {pool_size} threads for the runs ...", end="", flush=True)
        run_threads = create_threads(emu.port, pool_size)
        sse_threads = create_threads(emu.port, args.sse_samples)
        print(" done", flush=True)
        extras["runs"] = measure("runs (create + poll until completed)", emu, load_runs, seeded.assistant_id,
                                 run_threads, C, W, D)
        extras["sse"] = measure(f"first SSE event, {args.sse_samples} sequential streaming runs", emu,
                                sse_first_event, seeded.assistant_id, sse_threads)
        rss["emulator_end"] = emu.rss_kb

        print("baseline again (the machine is shared: the ratios use the mean of both bare measurements)", flush=True)
        again_get = measure("bare GET", bare, load_static, bare_get, C, W, D)
        again_post = measure("bare POST", bare, load_static, bare_post, C, W, D)
        extras["bare_again"] = {"bare GET": again_get, "bare POST": again_post}
        rss["bare_end"] = bare.rss_kb

        if args.streams:
            extras["streams"] = run_streams(args, tmp, pool, servers)
        print_report(args, results, extras)
        return 0
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        for server in servers:
            server.stop()
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def run_streams(
    args: argparse.Namespace, tmp: Path, pool: ProcessPoolExecutor, servers: list[Server]
) -> dict[str, Result]:
    """N slow-reading streams against a second emulator whose latency settings keep each stream open, then the
    same N against a bare sse-starlette app.

    `--stream-wait tokens` (default): EMULATOR_LATENCY_TOKENS_PER_SECOND so low that the stream sleeps before its
    first message delta (no database work while it waits). `--stream-wait ttft`: EMULATOR_LATENCY_TTFT_MS, during
    which each waiting stream re-reads its run (a write transaction) about once a second."""
    n, hold = args.streams, args.stream_hold
    open_timeout = max(60.0, n / 20)
    out: dict[str, Result] = {}
    print(f"holding {n} streams (open timeout {open_timeout:.0f} s, at most {OPEN_CONCURRENCY} connecting at "
          f"once, then all held {hold:g} s)", flush=True)
    server_wait = open_timeout + hold + 60  # longer than any stream is held: none ends by itself
    if args.stream_wait == "ttft":
        env = {"EMULATOR_LATENCY_TTFT_MS": str(int(server_wait * 1000))}
    else:
        env = {"EMULATOR_LATENCY_TOKENS_PER_SECOND": f"{1 / server_wait:.8f}"}
    print(f"  emulator latency settings: {env}", flush=True)
    emu = start_emulator(tmp / "data-streams", args.database_url, tmp / "emulator-streams.log", env=env)
    servers.append(emu)
    emu.wait_ready()
    assistant = api(emu.port, "POST", "/v1/assistants", {"model": "gpt-4o", "name": "bench-streams"})
    request = emu_request("POST", "/v1/threads/runs", {"assistant_id": assistant["id"], "stream": True, "thread": {}})
    print("  emulator ...", end="", flush=True)
    out["emulator"] = pool.submit(hold_streams, emu.port, request, n, hold, emu.proc.pid, open_timeout).result(
        timeout=open_timeout + hold + 200)
    print(" done", flush=True)
    emu.stop()
    sse = start_baseline("sse", tmp / "sse.log", server_wait)
    servers.append(sse)
    sse.wait_ready()
    print("  bare sse-starlette ...", end="", flush=True)
    out["bare sse-starlette"] = pool.submit(hold_streams, sse.port, build_request("GET", "/sse"), n, hold,
                                            sse.proc.pid, open_timeout).result(timeout=open_timeout + hold + 200)
    print(" done", flush=True)
    sse.stop()
    return out


if __name__ == "__main__":
    sys.exit(main())
