"""A fake model server speaking OpenAI's chat completions streaming protocol over real HTTP (loopback only).

It answers each `POST /v1/chat/completions` with the next queued `Reply` (or a short default text): text deltas,
tool-call deltas with their arguments split across chunks, a usage chunk when `stream_options.include_usage`
asks for it, then `data: [DONE]`; or a failure on demand (an error status with a JSON error, a delay before
answering, a stream cut mid-way, verbatim chunks such as malformed JSON). It records each request's body and
whether the client closed the connection before the answer's end. Built on asyncio (a loop in a thread), so a
thousand concurrent streams cost a thousand tasks, not a thousand threads.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import heapq
import itertools
import json
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

SENT_AT = "@@SENT_AT@@"
"""In a reply's text, replaced by the wall-clock time (`time.time()`, 6 decimals) at which its chunk is written:
a client measures each delta's delay over the upstream's."""


@dataclass
class FakeToolCall:
    name: str
    arguments: str
    """Sent as given (so it may be invalid JSON), split into `pieces` argument deltas."""
    pieces: int = 3
    id: str | None = None


@dataclass
class Reply:
    text: str | list[str] | None = None
    """A string is sent one word (with its leading space) per chunk; a list, one item per chunk."""
    tool_calls: list[FakeToolCall] = field(default_factory=list)
    usage: tuple[int, int] = (12, 7)
    finish_reason: str | None = None
    """Default: `tool_calls` when there are tool calls, else `stop`."""
    status: int = 200
    error: dict[str, Any] | None = None
    """The JSON body of a non-200 answer (default: an OpenAI-style error naming the status)."""
    headers: dict[str, str] = field(default_factory=dict)
    delay_before: float = 0.0
    """Seconds before the status line (longer than the client's timeout: a timeout)."""
    tokens_per_second: float | None = None
    """Pace of the content and argument chunks (None: as fast as possible)."""
    hold_after: int | None = None
    """After this many chunks, wait until `release` is set (or the client leaves)."""
    release: threading.Event = field(default_factory=threading.Event)
    cut_after: int | None = None
    """Close the connection after this many chunks, without ending the chunked body."""
    raw_chunks: list[str] | None = None
    """Send these `data:` payloads verbatim instead of building chunks."""
    send_done: bool = True
    hang_up: bool = False
    """Close the connection without answering."""
    raw_body: list[bytes] | None = None
    """Send these pieces as the body, verbatim, one HTTP chunk each (SSE framing under the test's control)."""
    whole: dict[str, Any] | None = None
    """Answer with this JSON body (`application/json`), as a server that ignores `stream: true` does."""


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any
    closed_by_client: bool = False
    """The client closed the connection before the answer's end."""
    completed: bool = False
    """The whole answer was written."""
    chunks_sent: int = 0
    ended: threading.Event = field(default_factory=threading.Event)

    def wait_ended(self, timeout: float = 5.0) -> bool:
        return self.ended.wait(timeout)


class _ClientGone(Exception):
    pass


PACER_TICK_SECONDS = 0.002
"""How often the pacer writes the chunks that are due (SENT_AT is stamped when a chunk is written, so this
jitter is the fake's, never counted against the client)."""


def _write_event(writer: asyncio.StreamWriter, event: str) -> None:
    if SENT_AT in event:
        event = event.replace(SENT_AT, f"{time.time():.6f}")
    data = event.encode()
    writer.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")


@dataclass(frozen=True)
class _Encoded:
    """An event as the pacer writes it, encoded once: the bytes before and after its SENT_AT (`after` None: it
    has none), so that a paced chunk costs a time stamp and a write (a thousand streams at 50 chunks a second
    write 50,000 a second: the fake must cost much less than the emulator it feeds)."""

    before: bytes
    after: bytes | None

    @classmethod
    def of(cls, event: str) -> _Encoded:
        before, found, after = event.partition(SENT_AT)
        return cls(before.encode(), after.encode() if found else None)

    def write(self, writer: asyncio.StreamWriter) -> None:
        if self.after is None:
            writer.write(b"%X\r\n%b\r\n" % (len(self.before), self.before))
            return
        stamp = b"%.6f" % time.time()
        size = len(self.before) + len(stamp) + len(self.after)
        writer.write(b"%X\r\n%b%b%b\r\n" % (size, self.before, stamp, self.after))


@dataclass
class _PacedStream:
    events: list[_Encoded]
    interval: float
    writer: asyncio.StreamWriter
    gone: asyncio.Future[bytes]
    received: Received
    done: asyncio.Future[bool]
    """True once the answer is written, False when the client left first."""
    sent: int = 0

    def advance(self) -> bool:
        """Write the next chunk (or the end); False once this stream needs no more turns."""
        if self.done.done():
            return False
        if self.gone.done() or self.writer.transport.is_closing():
            self.done.set_result(False)
            return False
        if self.sent == len(self.events):
            self.writer.write(b"0\r\n\r\n")
            self.received.completed = True
            self.done.set_result(True)
            return False
        self.events[self.sent].write(self.writer)
        self.sent += 1
        self.received.chunks_sent = self.sent
        return True


def _words(text: str) -> list[str]:
    parts = text.split(" ")
    return [parts[0], *(f" {word}" for word in parts[1:])]


def build_chunks(reply: Reply, model: str, include_usage: bool) -> list[str]:
    """The `data:` payloads of `reply`, as an OpenAI server streams them."""
    if reply.raw_chunks is not None:
        return list(reply.raw_chunks)
    base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()), "model": model}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        return json.dumps({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

    chunks = [chunk({"role": "assistant", "content": ""})]
    if reply.text is not None:
        pieces = reply.text if isinstance(reply.text, list) else _words(reply.text)
        chunks.extend(chunk({"content": piece}) for piece in pieces)
    for index, call in enumerate(reply.tool_calls):
        call_id = call.id or f"call_fake{index}"
        head = {"index": index, "id": call_id, "type": "function", "function": {"name": call.name, "arguments": ""}}
        chunks.append(chunk({"tool_calls": [head]}))
        size = max(1, -(-len(call.arguments) // call.pieces))
        for start in range(0, len(call.arguments), size):
            piece = call.arguments[start : start + size]
            chunks.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}))
    finish = reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")
    chunks.append(chunk({}, finish))
    if include_usage:
        prompt, completion = reply.usage
        usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
        chunks.append(json.dumps({**base, "choices": [], "usage": usage}))
    return chunks


class FakeUpstream:
    """`with FakeUpstream() as upstream:` serves at `upstream.url` (`http://127.0.0.1:PORT/v1`)."""

    def __init__(self, default: Reply | None = None) -> None:
        self.default = default or Reply(text="Hello from the fake upstream.")
        """What answers when no reply is queued (its `release` is shared: leave `hold_after` unset)."""
        self.requests: list[Received] = []
        self._replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-upstream", daemon=True)
        self._server: asyncio.Server | None = None
        self._due: list[tuple[float, int, _PacedStream]] = []
        self._order = itertools.count()
        self._pacer: asyncio.Future[None] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def reply(self, *replies: Reply) -> None:
        with self._lock:
            self._replies.extend(replies)

    def __enter__(self) -> FakeUpstream:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, "127.0.0.1", 0), self._loop
        ).result(5)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *_exc: object) -> None:
        with self._lock:
            for reply in self._replies:
                reply.release.set()
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close()
        tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _next_reply(self) -> Reply:
        with self._lock:
            return self._replies.popleft() if self._replies else self.default

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *header_lines = head.decode("latin-1").split("\r\n")
            headers = {
                name.strip().lower(): value.strip()
                for name, _, value in (line.partition(":") for line in header_lines if line)
            }
            raw = await reader.readexactly(int(headers.get("content-length", "0")))
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            writer.close()
            return
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        received = Received(path=request_line.split(" ")[1], headers=headers, body=body)
        with self._lock:
            self.requests.append(received)
        gone = asyncio.ensure_future(reader.read(1))
        try:
            await self._answer(self._next_reply(), received, writer, gone)
        except (_ClientGone, ConnectionError):
            received.closed_by_client = True
        finally:
            gone.cancel()
            with contextlib.suppress(Exception):
                writer.close()
            received.ended.set()

    async def _wait(self, seconds: float, gone: asyncio.Future[bytes]) -> None:
        """Sleep, noticing when the client closes the connection: at once for long waits, after the sleep for the
        short ones between chunks (a plain sleep costs less, and a thousand paced streams make many)."""
        if seconds < 0.1:
            await asyncio.sleep(seconds)
            if gone.done():
                raise _ClientGone
            return
        done, _ = await asyncio.wait({gone}, timeout=seconds)
        if done:
            raise _ClientGone

    async def _answer(
        self, reply: Reply, received: Received, writer: asyncio.StreamWriter, gone: asyncio.Future[bytes]
    ) -> None:
        if reply.delay_before:
            await self._wait(reply.delay_before, gone)
        if reply.hang_up:
            writer.transport.abort()
            return
        if reply.status != 200 or reply.whole is not None:
            error = reply.error or {"error": {"message": f"fake failure {reply.status}", "type": "server_error"}}
            payload = json.dumps(reply.whole or error).encode()
            extra = "".join(f"{name}: {value}\r\n" for name, value in reply.headers.items())
            writer.write(
                f"HTTP/1.1 {reply.status} Fake\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}"
                f"\r\nConnection: close\r\n{extra}\r\n".encode()
                + payload
            )
            await writer.drain()
            received.completed = True
            return
        body = received.body if isinstance(received.body, dict) else {}
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        chunks = build_chunks(reply, str(body.get("model", "")), include_usage)
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )
        interval = 1 / reply.tokens_per_second if reply.tokens_per_second else 0.0
        events = [f"data: {data}\n\n" for data in chunks]
        if reply.send_done:
            events.append("data: [DONE]\n\n")
        if reply.raw_body is not None:
            events = [piece.decode() for piece in reply.raw_body]
        if interval and reply.cut_after is None and reply.hold_after is None:
            await self._paced(events, interval, writer, gone, received)
            return
        for number, event in enumerate(events):
            if reply.cut_after is not None and number == reply.cut_after:
                writer.transport.abort()
                received.chunks_sent = number
                return
            if reply.hold_after is not None and number == reply.hold_after:
                while not reply.release.is_set():
                    await self._wait(0.005, gone)
            if interval and number:
                await self._wait(interval, gone)
            elif gone.done():
                raise _ClientGone
            _write_event(writer, event)
            await writer.drain()
            received.chunks_sent = number + 1
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        received.completed = True

    async def _paced(
        self,
        events: list[str],
        interval: float,
        writer: asyncio.StreamWriter,
        gone: asyncio.Future[bytes],
        received: Received,
    ) -> None:
        """Hand a paced answer to the pacer: one task and timer for every paced stream, not one sleep per chunk
        (a thousand streams at 50 chunks a second would cost the fake more than the client it measures)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[bool] = loop.create_future()
        stream = _PacedStream([_Encoded.of(event) for event in events], interval, writer, gone, received, done)
        heapq.heappush(self._due, (loop.time(), next(self._order), stream))
        if self._pacer is None or self._pacer.done():
            self._pacer = asyncio.ensure_future(self._pace())
        if not await done:
            raise _ClientGone
        await writer.drain()

    async def _pace(self) -> None:
        loop = asyncio.get_running_loop()
        while self._due:
            now = loop.time()
            while self._due and self._due[0][0] <= now:
                _due, _order, stream = heapq.heappop(self._due)
                if stream.advance():
                    heapq.heappush(self._due, (now + stream.interval, next(self._order), stream))
            await asyncio.sleep(PACER_TICK_SECONDS)


@contextlib.contextmanager
def fake_upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as upstream:
        yield upstream


def main() -> None:
    """`python -m tests.fake_upstream --words 50 --tokens-per-second 50`: serve until stdin closes (benchmarks,
    trying the upstream mode by hand); prints the URL to pass as `--upstream-url`."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--words", type=int, default=20, help="words per answer, one chunk each")
    parser.add_argument("--tokens-per-second", type=float, default=None, help="pace of the chunks")
    parser.add_argument("--stamp", action="store_true", help="each word is the time it was sent (SENT_AT)")
    arguments = parser.parse_args()
    word = f"{SENT_AT} " if arguments.stamp else "word "
    default = Reply(text=[word] * arguments.words, tokens_per_second=arguments.tokens_per_second)
    with FakeUpstream(default) as upstream:
        print(upstream.url, flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()
