"""The streaming scenarios: time to the first SSE event of sequential streaming runs, and N slow-reading
streams held open while the server's RSS is sampled. They run in the generator process, like `loadgen`'s."""

from __future__ import annotations

import asyncio
import contextlib
import time

from cpu import read_rss_kb
from loadgen import Result, emu_request, open_conn, percentile, summarize

OPEN_CONCURRENCY = 128
"""--streams: how many streams may be connecting (not yet at their first event) at once."""


def sse_first_event(port: int, assistant_id: str, thread_ids: list[str]) -> Result:
    """Sequential streaming runs, one per fresh thread: time from writing the request to the first byte of
    the first SSE event, and to the end of the stream."""
    return asyncio.run(_sse_first_event(port, assistant_id, thread_ids))


async def _sse_first_event(port: int, assistant_id: str, thread_ids: list[str]) -> Result:
    first: list[float] = []
    headers: list[float] = []
    whole: list[float] = []
    errors = 0
    samples: list[str] = []
    deadline = time.monotonic() + 120
    reader, writer = await open_conn(port)
    try:
        for thread_id in thread_ids:
            if time.monotonic() > deadline:
                samples.append("cut at the 120 s bound")
                break
            req = emu_request("POST", f"/v1/threads/{thread_id}/runs", {"assistant_id": assistant_id, "stream": True})
            start = time.perf_counter()
            writer.write(req)
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
                t_head = time.perf_counter() - start
                if int(head[9:12]) != 200 or b"transfer-encoding: chunked" not in head.lower():
                    errors += 1
                    samples.append(head[:200].decode(errors="replace"))
                    with contextlib.suppress(Exception):
                        body_len = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                        await reader.readexactly(body_len)
                    continue
                t_first = None
                events = 0
                while True:
                    size = int((await asyncio.wait_for(reader.readuntil(b"\r\n"), 30)).split(b";")[0], 16)
                    data = await asyncio.wait_for(reader.readexactly(size + 2), 30)
                    if size == 0:
                        break
                    if t_first is None and b"event:" in data:
                        t_first = time.perf_counter() - start
                    events += data.count(b"event:")
                t_all = time.perf_counter() - start
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
                errors += 1
                samples.append(repr(exc))
                writer.close()
                reader, writer = await open_conn(port)
                continue
            if t_first is None:
                errors += 1
                samples.append("stream without an event")
                continue
            first.append(t_first)
            headers.append(t_head)
            whole.append(t_all)
    finally:
        writer.close()
    headers.sort()
    whole.sort()
    return summarize(
        first, errors, 1.0, samples, total=len(first) + errors,
        head_p50=percentile(headers, 50) * 1000, whole_p50=percentile(whole, 50) * 1000,
        whole_p99=percentile(whole, 99) * 1000,
    )


def hold_streams(port: int, request: bytes, n: int, hold_s: float, pid: int, open_timeout: float) -> Result:
    """Open N streams (bounded opening concurrency), read each up to its first event, then stop reading (a
    slow client). When all are open (or the open timeout passes), read the server's RSS; then close all."""
    return asyncio.run(_hold_streams(port, request, n, hold_s, pid, open_timeout))


async def _hold_streams(port: int, request: bytes, n: int, hold_s: float, pid: int, open_timeout: float) -> Result:
    gate = asyncio.Semaphore(OPEN_CONCURRENCY)
    release = asyncio.Event()
    opened = 0
    failed = 0
    samples: list[str] = []
    writers: list[asyncio.StreamWriter] = []

    async def one() -> None:
        nonlocal opened, failed
        async with gate:
            try:
                reader, writer = await open_conn(port)
                writers.append(writer)
                writer.write(request)
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), open_timeout)
                if int(head[9:12]) != 200:
                    raise ValueError(head[:120].decode(errors="replace"))
                buf = b""
                while b"event:" not in buf:
                    chunk = await asyncio.wait_for(reader.read(4096), open_timeout)
                    if not chunk:
                        raise ValueError("closed before the first event")
                    buf += chunk
                opened += 1
            except Exception as exc:
                failed += 1
                samples.append(repr(exc))
                return
        with contextlib.suppress(TimeoutError):  # slow reader: hold the stream, read nothing more
            await asyncio.wait_for(release.wait(), open_timeout + hold_s + 10)

    rss_before = read_rss_kb(pid)
    start = time.monotonic()
    tasks = [asyncio.ensure_future(one()) for _ in range(n)]
    while time.monotonic() - start < open_timeout and opened + failed < n:
        await asyncio.sleep(0.25)
    open_seconds = time.monotonic() - start
    rss_open = read_rss_kb(pid)
    hold_end = time.monotonic() + hold_s  # every stream open: keep them so, sampling the server's RSS
    while time.monotonic() < hold_end:
        await asyncio.sleep(0.5)
        rss_open = max(rss_open, read_rss_kb(pid))
    opened_at_end, failed_at_end, samples_at_end = opened, failed, samples[:3]
    release.set()  # streams still connecting now fail as they are closed: not counted
    for writer in writers:
        writer.close()
    await asyncio.wait(tasks, timeout=30)
    for task in tasks:
        task.cancel()
    return {"n": n, "opened": opened_at_end, "failed": failed_at_end, "open_seconds": open_seconds,
            "rss_before_kb": rss_before,
            "rss_open_kb": rss_open, "error_samples": samples_at_end,
            "not_open_in_time": n - opened_at_end - failed_at_end}
