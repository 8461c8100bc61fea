"""The server's side of a session's kernel: start it, send it a cell, read its answer and its output within the
time limit, stop it.

The protocol is one JSON line each way per cell on two pipes of their own (`kernel_main`). The kernel's fd 1
and 2 (its children's too) are a third pipe the server reads while the cell runs, keeping only the last
`limits.CODE_INTERPRETER_MAX_LOG_CHARS` characters: a cell may print without bound, its logs are truncated,
its session lives on.

The reply line is written by the process the cell runs in, so a cell can write one of its own (a secret the
kernel kept for the purpose, such as a nonce per cell, would be in its memory, which the cell can read): the
host relies on nothing in it. The logs come from the output pipe, the files from the server's own walk of
/mnt/data, the figures are PNG bytes checked for their size. And an isolated kernel must be seen idle after its
reply (`Kernel.idle`: one thread, no child, blocked reading the request pipe, nothing else under the sandbox's
init), else the session ends: a cell that forged an early reply to go on running past its deadline and
between cells does not.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import platform
import select
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulator import limits
from emulator.sandbox.isolation import ENVIRONMENT, Launcher, Mode

START_SECONDS = 30.0
MAX_PROCESSES = 64
"""Processes and threads of a session (a fork bomb ends the cell, not the machine)."""
MAX_FILE_BYTES = 512 * 1024 * 1024
"""The largest file a cell may write (the hosted API's file size limit)."""
WATCH_SECONDS = 0.5
"""How often a running cell's session is checked (`Watch`): its disk use, its memory where no cgroup caps it."""
_MAX_REPLY_BYTES = 64 * 1024 * 1024
_KEPT_OUTPUT_BYTES = limits.CODE_INTERPRETER_MAX_LOG_CHARS * 4
"""Enough bytes for the last `CODE_INTERPRETER_MAX_LOG_CHARS` characters in UTF-8."""
_READ_BYTES = 1 << 20
_IDLE_SECONDS = 5.0
"""How long a kernel has, after its reply, to be seen waiting for the next cell."""
_READ_SYSCALL = {"x86_64": 0, "amd64": 0, "aarch64": 63, "arm64": 63}.get(platform.machine().lower())

Watch = Callable[[], str | None]
"""Called every `WATCH_SECONDS` while a cell runs: why the session must end now, or None."""


class SandboxError(Exception):
    """The sandbox failed (a kernel that cannot start, a broken protocol): the tool call fails, not the cell."""


class KernelEnded(Exception):
    """The kernel stopped answering during a cell: it died (its cell killed it), ran out of time, or was ended
    by its watch."""

    def __init__(self, logs: str) -> None:
        super().__init__(logs)
        self.logs = logs


@dataclass(frozen=True)
class Reply:
    logs: str
    images: list[bytes] = field(default_factory=list)
    threads: int = 1
    """The kernel's threads after the cell: more than one means the cell left a thread running."""
    idle: bool = True
    """The kernel was seen waiting for the next cell (`Kernel.idle`)."""


@dataclass
class Kernel:
    process: subprocess.Popen[bytes]
    requests: int
    replies: int
    output: int
    _pending: bytes = b""
    _kept: bytearray = field(default_factory=bytearray)
    """The end of the output read since the cell began."""
    _output_bytes: int = 0
    _watched: tuple[int, int, int] | None = None
    """An isolated kernel's sandbox init, the kernel process (host pids) and the fd it reads requests from."""

    @classmethod
    def start(
        cls, launcher: Launcher, data_dir: Path, uid: int, timeout_seconds: int, font_cache: Path | None = None,
        cgroup_procs: Path | None = None,
    ) -> Kernel:
        """A kernel ready for its first cell (in the memory cgroup of `cgroup_procs`, if any); `SandboxError`
        when it cannot start."""
        request_read, request_write = os.pipe()
        reply_read, reply_write = os.pipe()
        output_read, output_write = os.pipe()
        with contextlib.suppress(OSError):  # fewer, larger reads of a cell that prints much
            fcntl.fcntl(output_read, fcntl.F_SETPIPE_SZ, _READ_BYTES)
        arguments = [
            str(limits.CODE_INTERPRETER_MEMORY_BYTES), str(timeout_seconds), str(MAX_PROCESSES), str(MAX_FILE_BYTES),
            launcher.mode.value, str(request_read), str(reply_write),
        ]
        launch = launcher.launch(arguments, data_dir, uid, font_cache, cgroup_procs)
        try:
            process = subprocess.Popen(
                launch.argv,
                cwd=launcher.working_directory(data_dir),
                env=ENVIRONMENT,
                stdin=subprocess.DEVNULL,
                stdout=output_write,
                stderr=output_write,
                pass_fds=(request_read, reply_write, *launch.fds),
                start_new_session=launcher.mode is Mode.ISOLATED,
            )
        except OSError as error:
            for fd in (request_read, request_write, reply_read, reply_write, output_read, output_write):
                os.close(fd)
            raise SandboxError(f"the code_interpreter sandbox could not start: {error}") from error
        finally:
            launch.close()
        for fd in (request_read, reply_write, output_write):
            os.close(fd)
        kernel = cls(process, request_write, reply_read, output_read)
        try:
            kernel._read_line(START_SECONDS)
        except KernelEnded as ended:
            kernel.stop()
            detail = kernel._kept.decode("utf-8", "replace").strip()[-4000:] or ended.logs
            raise SandboxError(f"the code_interpreter sandbox could not start: {detail}") from None
        if launcher.mode is Mode.ISOLATED:
            kernel._watched = _init_and_kernel(process.pid, request_read)
        return kernel

    def run(self, code: str, timeout_seconds: int, watch: Watch | None = None) -> Reply:
        """Run one cell; `KernelEnded` when the kernel died, the cell ran out of time or `watch` ended it (the
        kernel is stopped)."""
        deadline = time.monotonic() + timeout_seconds
        self._drain_output()
        self._kept.clear()
        self._output_bytes = 0
        self._send((json.dumps({"code": code}) + "\n").encode(), deadline, timeout_seconds)
        try:
            answer = self._read_line(max(0.0, deadline - time.monotonic()), timeout_seconds, watch)
        except KernelEnded:
            self.stop()
            raise
        self._drain_output()
        try:
            reply = json.loads(answer)
            images = [_decode_image(item) for item in reply.get("images", [])]
            return Reply(logs=self._logs(), images=images, threads=int(reply.get("threads", 1)), idle=self.idle())
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            self.stop()
            raise SandboxError(f"the code_interpreter kernel answered garbage: {error}") from None

    def idle(self) -> bool:
        """The isolated kernel waits for the next cell (within `_IDLE_SECONDS`): its only thread blocked in
        read(2) on the request pipe, no child of its own, and it the only process under the sandbox's init.
        True when it cannot be known here (unsafe mode, /proc hiding it)."""
        if self._watched is None:
            return True
        init, kernel, request_fd = self._watched
        deadline = time.monotonic() + _IDLE_SECONDS
        pause = 0.0005
        while True:
            try:
                waiting = (_children(init) == [kernel] and not _children(kernel)
                           and _threads(kernel) == 1 and _reading(kernel, request_fd))
            except OSError:
                return False
            if waiting or time.monotonic() > deadline:
                return waiting
            time.sleep(pause)
            pause = min(pause * 2, 0.02)

    def _logs(self) -> str:
        text = self._kept.decode("utf-8", "replace")
        if self._output_bytes <= len(self._kept) and len(text) <= limits.CODE_INTERPRETER_MAX_LOG_CHARS:
            return text
        return (f"[output truncated: only its last {limits.CODE_INTERPRETER_MAX_LOG_CHARS} characters are shown "
                f"({self._output_bytes} bytes were printed)]\n{text[-limits.CODE_INTERPRETER_MAX_LOG_CHARS:]}")

    def _keep_output(self, chunk: bytes) -> None:
        self._output_bytes += len(chunk)
        self._kept += chunk
        if len(self._kept) > _KEPT_OUTPUT_BYTES:
            del self._kept[: len(self._kept) - _KEPT_OUTPUT_BYTES]

    def _drain_output(self) -> None:
        """Read what the output pipe holds now, without waiting."""
        if self.output < 0:
            return
        os.set_blocking(self.output, False)
        try:
            while chunk := os.read(self.output, _READ_BYTES):
                self._keep_output(chunk)
        except (BlockingIOError, OSError):
            pass
        finally:
            with contextlib.suppress(OSError):
                os.set_blocking(self.output, True)

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
                readable, ready, _ = select.select([self.output], [self.requests], [], remaining)
                if readable:
                    self._keep_output(os.read(self.output, _READ_BYTES))
                written = os.write(self.requests, view) if ready else 0
            except BlockingIOError:
                continue
            except (OSError, ValueError):  # the kernel was stopped meanwhile (its session ended): its pipe is closed
                raise KernelEnded(self._ended_logs()) from None
            view = view[written:]

    def _read_line(self, seconds: float, timeout_seconds: float | None = None, watch: Watch | None = None) -> bytes:
        """The next reply line, the output read meanwhile; `watch` called every `WATCH_SECONDS`."""
        deadline = time.monotonic() + seconds
        next_watch = time.monotonic() + WATCH_SECONDS
        output_open = True
        while b"\n" not in self._pending:
            now = time.monotonic()
            remaining = deadline - now
            if remaining <= 0:
                self.stop()
                raise KernelEnded(_timed_out(timeout_seconds if timeout_seconds is not None else seconds))
            if watch is not None and now >= next_watch:
                next_watch = now + WATCH_SECONDS
                reason = watch()
                if reason is not None:
                    self.stop()
                    raise KernelEnded(reason)
            wait = min(remaining, max(0.0, next_watch - now)) if watch is not None else remaining
            try:
                ready, _, _ = select.select([self.replies, *([self.output] if output_open else [])], [], [], wait)
                if self.output in ready:
                    chunk = os.read(self.output, _READ_BYTES)
                    output_open = bool(chunk)
                    self._keep_output(chunk)
                if self.replies not in ready:
                    continue
                chunk = os.read(self.replies, _READ_BYTES)
            except (OSError, ValueError):  # the kernel was stopped meanwhile (its session ended): its pipe is closed
                raise KernelEnded(self._ended_logs()) from None
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
        for fd in (self.requests, self.replies, self.output):
            with contextlib.suppress(OSError):
                if fd >= 0:
                    os.close(fd)
        self.requests = self.replies = self.output = -1


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as listed:
        return [int(child) for child in listed.read().split()]


def _threads(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as status:
        for line in status:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return 0


def _reading(pid: int, fd: int) -> bool:
    """The process is in read(2) on `fd` (where this machine's read number is known)."""
    if _READ_SYSCALL is None:
        return True
    with open(f"/proc/{pid}/syscall", encoding="ascii") as syscall:
        fields = syscall.read().split()
    return len(fields) > 1 and fields[0] == str(_READ_SYSCALL) and fields[1] == hex(fd)


def _init_and_kernel(bwrap: int, request_fd: int) -> tuple[int, int, int] | None:
    """The sandbox's init (bwrap's child) and the kernel (init's only child), once the kernel is ready; None
    when /proc does not show them (the idle check is then skipped)."""
    try:
        [init] = _children(bwrap)
        [kernel] = _children(init)
    except (OSError, ValueError):
        return None
    return init, kernel, request_fd


def _timed_out(timeout_seconds: float) -> str:
    return f"Execution timed out after {timeout_seconds:g} seconds; the session was reset."


def _decode_image(item: Any) -> bytes:
    return base64.b64decode(str(item), validate=True)
