"""The upstream client's sockets: asyncio protocols that keep reading, under httpx and httpcore.

httpcore's default backend (anyio) pauses a socket's transport after every read and resumes it at the next one:
two epoll syscalls and a few layers per read. A streamed answer is read one small chunk at a time (a token every
20 ms per stream), so with a thousand streams that is most of the client's cost. Here a connection's protocol
buffers what arrives (pausing only past `HIGH_WATER` bytes) and a read takes from the buffer.

    transport = upstream_transport(limits)     # an httpx.AsyncHTTPTransport whose pool connects through this
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

log = logging.getLogger("emulator.upstream")

SocketOption = tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]

HIGH_WATER = 1 << 20
"""Bytes buffered before the socket stops being read (until the reader takes some)."""


class _Reading(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[None] | None = None
        self.ended = False
        self.error: BaseException | None = None
        self.paused = False
        self.deadline: float | None = None
        """When the read waiting now times out."""
        self._watchdog: asyncio.TimerHandle | None = None

    def wait_for_data(self, loop: asyncio.AbstractEventLoop, timeout: float | None) -> asyncio.Future[None]:
        waiter = self.waiter = loop.create_future()
        if timeout is not None:
            self.deadline = loop.time() + timeout
            if self._watchdog is None or self.deadline < self._watchdog.when():
                self._watch_at(loop, self.deadline)
        return waiter

    def _watch_at(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
        self._watchdog = loop.call_at(when, self._watch, loop)

    def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        """One timer per connection, not one per read (a streamed answer is read a small chunk at a time, tens of
        thousands of reads a second with a thousand streams): it fires at the deadline it was set for, and moves
        on to the waiting read's deadline if that is later, or stops when no read waits."""
        self._watchdog = None
        waiter, deadline = self.waiter, self.deadline
        if waiter is None or deadline is None or waiter.done():
            return
        if loop.time() >= deadline:
            waiter.set_exception(TimeoutError())
        else:
            self._watch_at(loop, deadline)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def _wake(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > HIGH_WATER and self.transport is not None and not self.paused:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.ended = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.ended = True
        self.error = exc
        self._wake()
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None


class _Stream(httpcore.AsyncNetworkStream):
    def __init__(self, transport: asyncio.Transport, protocol: _Reading) -> None:
        self._transport = transport
        self._protocol = protocol

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        protocol = self._protocol
        if not protocol.buffer and not protocol.ended:
            try:
                await protocol.wait_for_data(asyncio.get_running_loop(), timeout)
            except TimeoutError as exc:
                raise httpcore.ReadTimeout(f"no data within {timeout} s") from exc
            finally:
                protocol.waiter = protocol.deadline = None
        if protocol.buffer:
            data = bytes(protocol.buffer[:max_bytes])
            del protocol.buffer[:max_bytes]
            if protocol.paused and len(protocol.buffer) <= HIGH_WATER // 2:
                protocol.paused = False
                self._transport.resume_reading()
            return data
        if protocol.error is not None:
            raise httpcore.ReadError(str(protocol.error) or type(protocol.error).__name__)
        return b""

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if self._transport.is_closing():
            raise httpcore.WriteError("the connection is closed")
        self._transport.write(buffer)

    async def aclose(self) -> None:
        self._transport.close()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("TLS upstreams are read through httpcore's own backend (`upstream_transport`)")

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":  # an idle kept-alive connection the server closed (or wrote to)
            return bool(self._protocol.buffer) or self._protocol.ended
        if info in ("client_addr", "server_addr"):
            return self._transport.get_extra_info("sockname" if info == "client_addr" else "peername")
        if info == "socket":
            return self._transport.get_extra_info("socket")
        return None


class _Backend(httpcore.AsyncNetworkBackend):
    async def connect_tcp(
        self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        local = None if local_address is None else (local_address, 0)
        try:
            async with asyncio.timeout(timeout):
                transport, protocol = await loop.create_connection(_Reading, host, port, local_addr=local)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"no connection within {timeout} s") from exc
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for option in socket_options or ():
                sock.setsockopt(*option)
        assert isinstance(transport, asyncio.Transport)
        return _Stream(transport, protocol)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("the upstream is reached over TCP")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def upstream_transport(limits: httpx.Limits, url: str) -> httpx.AsyncHTTPTransport | None:
    """httpx's transport; for a plain-HTTP upstream (a local model server, where a load test streams thousands of
    answers) its pool connects through `_Backend`. An HTTPS upstream (a hosted API) gets None: httpx's own
    transport (TLS, proxies from the environment stay theirs); an httpcore version that keeps its pool's backend
    elsewhere gets httpcore's own backend: slower, never wrong."""
    if httpx.URL(url).scheme != "http":
        return None
    transport = httpx.AsyncHTTPTransport(limits=limits)
    pool = getattr(transport, "_pool", None)
    if isinstance(pool, httpcore.AsyncConnectionPool) and hasattr(pool, "_network_backend"):
        pool._network_backend = _Backend()
    else:
        log.warning("httpcore keeps its pool's network backend elsewhere: the upstream client reads through anyio")
    return transport
