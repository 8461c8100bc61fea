"""The server's side of a session's kernel: start it, send it a cell, read its answer within the time limit,
stop it. The protocol is one JSON line each way per cell on two pipes of their own (`kernel_main`)."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import select
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulator import limits
from emulator.sandbox import seccomp
from emulator.sandbox.isolation import ENVIRONMENT, Launcher, Mode

START_SECONDS = 30.0
MAX_PROCESSES = 64
"""Processes and threads of a session (a fork bomb ends the cell, not the machine)."""
MAX_FILE_BYTES = 512 * 1024 * 1024
"""The largest file a cell may write (the hosted API's file size limit)."""
_MAX_REPLY_BYTES = 64 * 1024 * 1024


class SandboxError(Exception):
    """The sandbox failed (a kernel that cannot start, a broken protocol): the tool call fails, not the cell."""


class KernelEnded(Exception):
    """The kernel stopped answering during a cell: it died (its cell killed it) or ran out of time."""

    def __init__(self, logs: str) -> None:
        super().__init__(logs)
        self.logs = logs


@dataclass(frozen=True)
class Reply:
    logs: str
    images: list[bytes] = field(default_factory=list)
    threads: int = 1
    """The kernel's threads after the cell: more than one means the cell left a thread running."""


@dataclass
class Kernel:
    process: subprocess.Popen[bytes]
    requests: int
    replies: int
    _pending: bytes = b""

    @classmethod
    def start(
        cls, launcher: Launcher, data_dir: Path, uid: int, timeout_seconds: int, font_cache: Path | None = None
    ) -> Kernel:
        """A kernel ready for its first cell; `SandboxError` when it cannot start."""
        request_read, request_write = os.pipe()
        reply_read, reply_write = os.pipe()
        arguments = [
            str(limits.CODE_INTERPRETER_MEMORY_BYTES), str(timeout_seconds), str(MAX_PROCESSES), str(MAX_FILE_BYTES),
            str(limits.CODE_INTERPRETER_MAX_LOG_CHARS), launcher.mode.value, str(request_read), str(reply_write),
        ]
        filter_fd = seccomp.descriptor() if launcher.mode is Mode.ISOLATED else None
        extra = () if filter_fd is None else (filter_fd,)
        try:
            process = subprocess.Popen(
                launcher.command(arguments, data_dir, uid, font_cache, filter_fd),
                cwd=launcher.working_directory(data_dir),
                env=ENVIRONMENT,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                pass_fds=(request_read, reply_write, *extra),
                start_new_session=launcher.mode is Mode.ISOLATED,
            )
        except OSError as error:
            for fd in (request_read, request_write, reply_read, reply_write, *extra):
                os.close(fd)
            raise SandboxError(f"the code_interpreter sandbox could not start: {error}") from error
        for fd in extra:
            os.close(fd)
        os.close(request_read)
        os.close(reply_write)
        kernel = cls(process, request_write, reply_read)
        try:
            kernel._read_line(START_SECONDS)
        except KernelEnded as ended:
            kernel.stop()
            detail = kernel._stderr() or ended.logs
            raise SandboxError(f"the code_interpreter sandbox could not start: {detail}") from None
        return kernel

    def run(self, code: str, timeout_seconds: int) -> Reply:
        """Run one cell; `KernelEnded` when the kernel died or the cell ran out of time (the kernel is stopped)."""
        deadline = time.monotonic() + timeout_seconds
        self._send((json.dumps({"code": code}) + "\n").encode(), deadline, timeout_seconds)
        try:
            answer = self._read_line(max(0.0, deadline - time.monotonic()), timeout_seconds)
        except KernelEnded:
            self.stop()
            raise
        try:
            reply = json.loads(answer)
            images = [_decode_image(item) for item in reply.get("images", [])]
            return Reply(logs=str(reply["logs"]), images=images, threads=int(reply.get("threads", 1)))
        except (ValueError, KeyError, TypeError) as error:
            self.stop()
            raise SandboxError(f"the code_interpreter kernel answered garbage: {error}") from None

    def _send(self, request: bytes, deadline: float, timeout_seconds: float) -> None:
        """Write the request within the cell's deadline: a kernel that stopped reading (a cell stopped it, or
        it is busy) must not hold the server's thread on a full pipe."""
        os.set_blocking(self.requests, False)
        view = memoryview(request)
        while view:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.stop()
                raise KernelEnded(_timed_out(timeout_seconds))
            try:
                _, ready, _ = select.select([], [self.requests], [], remaining)
                written = os.write(self.requests, view) if ready else 0
            except BlockingIOError:
                continue
            except (OSError, ValueError):  # the kernel was stopped meanwhile (its session ended): its pipe is closed
                raise KernelEnded(self._ended_logs()) from None
            view = view[written:]

    def _read_line(self, seconds: float, timeout_seconds: float | None = None) -> bytes:
        deadline = time.monotonic() + seconds
        while b"\n" not in self._pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.stop()
                raise KernelEnded(_timed_out(timeout_seconds if timeout_seconds is not None else seconds))
            try:
                ready, _, _ = select.select([self.replies], [], [], remaining)
                chunk = os.read(self.replies, 1 << 20) if ready else None
            except (OSError, ValueError):  # the kernel was stopped meanwhile (its session ended): its pipe is closed
                raise KernelEnded(self._ended_logs()) from None
            if chunk is None:
                continue
            if not chunk:
                raise KernelEnded(self._ended_logs())
            self._pending += chunk
            if len(self._pending) > _MAX_REPLY_BYTES:
                self.stop()
                raise SandboxError("the code_interpreter kernel's answer is too large")
        line, _, self._pending = self._pending.partition(b"\n")
        return line

    def _ended_logs(self) -> str:
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.stop()
            code = self.process.returncode
        cause = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        return f"The code_interpreter session ended ({cause}); its state is lost."

    def _stderr(self) -> str:
        if self.process.stderr is None:
            return ""
        try:
            return self.process.stderr.read(4000).decode("utf-8", "replace").strip()
        except (OSError, ValueError):
            return ""

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        """Kill the kernel and everything it started (its process group, its PID namespace with it)."""
        if self.process.poll() is None:
            try:
                if self.process.pid == os.getpgid(self.process.pid):
                    os.killpg(self.process.pid, signal.SIGKILL)
                else:
                    self.process.kill()
            except ProcessLookupError:
                pass
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)
        for fd in (self.requests, self.replies):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.requests = self.replies = -1
        if self.process.stderr is not None:
            self.process.stderr.close()


def _timed_out(timeout_seconds: float) -> str:
    return f"Execution timed out after {timeout_seconds:g} seconds; the session was reset."


def _decode_image(item: Any) -> bytes:
    return base64.b64decode(str(item), validate=True)
