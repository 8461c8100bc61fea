"""The load generator: a raw asyncio HTTP/1.1 client (pre-built request bytes, Content-Length or chunked
responses, keep-alive connections) and the request/response scenarios it drives.

The scenarios run in the generator process (`bench.py` spawns it once), so the measuring loop has its own core
share and the orchestration (seeding, parsing) never competes with it. Only loopback is ever contacted; every
loop is bounded in count and time.
"""

from __future__ import annotations

import asyncio
import json
import math
import socket
import time
from typing import Any

HOST = "127.0.0.1"
API_KEY = "sk-bench"
EMU_HEADERS = {"Authorization": f"Bearer {API_KEY}", "OpenAI-Beta": "assistants=v2"}
PHASE_GRACE_S = 30.0
"""Extra wall time a load phase may take past warm-up + duration before it is cut (requests in flight)."""
TERMINAL_RUN_STATES = {"completed", "failed", "cancelled", "expired", "incomplete", "requires_action"}
MAX_POLLS = 50

Result = dict[str, Any]
"""A phase's figures: count, errors, rps, p50/p99/max (ms), error samples, and what the phase adds."""


def build_request(method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    payload = b""
    if body is not None:
        payload = json.dumps(body, separators=(",", ":")).encode()
        lines.append("Content-Type: application/json")
    if method != "GET" or payload:
        lines.append(f"Content-Length: {len(payload)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


def emu_request(method: str, path: str, body: Any = None) -> bytes:
    return build_request(method, path, body, EMU_HEADERS)


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lower = head.lower()
    i = lower.find(b"\r\ncontent-length:")
    if i >= 0:
        j = lower.index(b"\r\n", i + 2)
        return status, await reader.readexactly(int(lower[i + 17 : j]))
    if b"\r\ntransfer-encoding: chunked" in lower:
        parts: list[bytes] = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            data = await reader.readexactly(size + 2)
            if size == 0:
                return status, b"".join(parts)
            parts.append(data[:-2])
    return status, b""


async def open_conn(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(HOST, port, limit=1 << 20)
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return reader, writer


async def call(port: int, request: bytes) -> tuple[int, bytes]:
    reader, writer = await open_conn(port)
    try:
        writer.write(request)
        return await asyncio.wait_for(read_response(reader), 60)
    finally:
        writer.close()


async def call_many(port: int, requests: list[bytes], concurrency: int = 16) -> list[tuple[int, bytes]]:
    """Setup traffic (not measured): every request once, in order of the results."""
    results: list[tuple[int, bytes]] = [(0, b"")] * len(requests)
    cursor = iter(range(len(requests)))

    async def worker() -> None:
        reader, writer = await open_conn(port)
        try:
            for i in cursor:
                writer.write(requests[i])
                results[i] = await asyncio.wait_for(read_response(reader), 60)
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(min(concurrency, len(requests)))))
    return results


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, math.ceil(q / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


def summarize(latencies: list[float], errors: int, window: float, samples: list[str], **extra: Any) -> Result:
    latencies.sort()
    return {
        "count": len(latencies),
        "errors": errors,
        "rps": len(latencies) / window if window > 0 else 0.0,
        "p50": percentile(latencies, 50) * 1000,
        "p99": percentile(latencies, 99) * 1000,
        "max": (latencies[-1] * 1000) if latencies else float("nan"),
        "error_samples": samples[:3],
        **extra,
    }


def load_static(port: int, requests: list[bytes], connections: int, warmup: float, duration: float) -> Result:
    """C connections, each cycling over `requests` (from its own offset) for warm-up + duration."""
    return asyncio.run(_load_static(port, requests, connections, warmup, duration))


async def _load_static(port: int, requests: list[bytes], connections: int, warmup: float, duration: float) -> Result:
    loop = asyncio.get_running_loop()
    t_start = loop.time()
    t0, t1 = t_start + warmup, t_start + warmup + duration
    latencies: list[float] = []
    errors = 0
    total = 0
    samples: list[str] = []
    n = len(requests)

    async def worker(index: int) -> None:
        nonlocal errors, total
        clock = time.perf_counter
        now = loop.time
        k = index % n
        reader, writer = await open_conn(port)
        try:
            while True:
                begin = now()
                if begin >= t1:
                    break
                req = requests[k]
                k = k + 1 if k + 1 < n else 0
                start = clock()
                try:
                    writer.write(req)
                    status, body = await read_response(reader)
                except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    errors += begin >= t0
                    samples.append(repr(exc))
                    writer.close()
                    reader, writer = await open_conn(port)
                    continue
                elapsed = clock() - start
                end = now()
                total += 1
                if t0 <= end <= t1:
                    if status >= 400:
                        errors += 1
                        samples.append(f"{status} {body[:200]!r}")
                    else:
                        latencies.append(elapsed)
        finally:
            writer.close()

    tasks = [asyncio.ensure_future(worker(i)) for i in range(connections)]
    done, pending = await asyncio.wait(tasks, timeout=warmup + duration + PHASE_GRACE_S)
    for task in pending:
        task.cancel()
    for task in done:
        if task.exception() is not None:
            samples.append(repr(task.exception()))
    return summarize(latencies, errors, duration, samples, cut=len(pending), total=total)


def load_runs(port: int, assistant_id: str, thread_ids: list[str], connections: int, warmup: float,
              duration: float) -> Result:
    """Each connection: take a fresh thread, create a run, GET it until it is terminal; one latency per run."""
    return asyncio.run(_load_runs(port, assistant_id, thread_ids, connections, warmup, duration))


async def _load_runs(port: int, assistant_id: str, thread_ids: list[str], connections: int, warmup: float,
                     duration: float) -> Result:
    loop = asyncio.get_running_loop()
    t_start = loop.time()
    t0, t1 = t_start + warmup, t_start + warmup + duration
    latencies: list[float] = []
    errors = 0
    requests_done = 0
    polls_total = 0
    total = 0
    samples: list[str] = []
    pool = list(reversed(thread_ids))
    exhausted = False
    create_body = {"assistant_id": assistant_id}

    async def worker() -> None:
        nonlocal errors, requests_done, polls_total, exhausted, total
        reader, writer = await open_conn(port)
        try:
            while loop.time() < t1:
                if not pool:
                    exhausted = True
                    break
                thread_id = pool.pop()
                start = time.perf_counter()
                ok = False
                polls = 0
                detail = ""
                try:
                    writer.write(emu_request("POST", f"/v1/threads/{thread_id}/runs", create_body))
                    status, body = await read_response(reader)
                    if status == 200:
                        run = json.loads(body)
                        get = emu_request("GET", f"/v1/threads/{thread_id}/runs/{run['id']}")
                        while run["status"] not in TERMINAL_RUN_STATES and polls < MAX_POLLS:
                            writer.write(get)
                            status, body = await read_response(reader)
                            polls += 1
                            if status != 200:
                                break
                            run = json.loads(body)
                        ok = run["status"] == "completed"
                        detail = f"run status {run['status']} after {polls} polls"
                    else:
                        detail = f"{status} {body[:200]!r}"
                except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    detail = repr(exc)
                    writer.close()
                    reader, writer = await open_conn(port)
                elapsed = time.perf_counter() - start
                total += 1
                if t0 <= loop.time() <= t1:
                    requests_done += 1 + polls
                    polls_total += polls
                    if ok:
                        latencies.append(elapsed)
                    else:
                        errors += 1
                        samples.append(detail)
        finally:
            writer.close()

    tasks = [asyncio.ensure_future(worker()) for _ in range(connections)]
    done, pending = await asyncio.wait(tasks, timeout=warmup + duration + PHASE_GRACE_S)
    for task in pending:
        task.cancel()
    for task in done:
        if task.exception() is not None:
            samples.append(repr(task.exception()))
    completed = len(latencies)
    return summarize(
        latencies, errors, duration, samples, cut=len(pending), exhausted=exhausted, total=total,
        http_rps=requests_done / duration, polls_per_run=(polls_total / completed) if completed else float("nan"),
    )



def api(port: int, method: str, path: str, body: Any = None) -> dict[str, Any]:
    """One setup request (not measured) to the emulator; its JSON answer, or an error unless 200."""
    status, payload = asyncio.run(call(port, emu_request(method, path, body)))
    if status != 200:
        raise RuntimeError(f"{method} {path} -> {status} {payload[:300]!r}")
    answer: dict[str, Any] = json.loads(payload)
    return answer


def api_many(port: int, requests: list[bytes], concurrency: int = 16) -> list[dict[str, Any]]:
    results = asyncio.run(call_many(port, requests, concurrency))
    bad = [(s, b[:200]) for s, b in results if s != 200]
    if bad:
        raise RuntimeError(f"{len(bad)} setup requests failed, e.g. {bad[0]}")
    return [json.loads(body) for _, body in results]

