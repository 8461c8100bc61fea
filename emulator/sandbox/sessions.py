"""code_interpreter sessions, as the hosted tool had them: one kernel per thread.

A session keeps its variables, imports and files across the code_interpreter calls of its thread. It ends
after an hour without use (by the emulator clock, given by the caller), when its thread is deleted, when a
cell runs out of time or kills its kernel, or when the server stops; the next call starts a new, clean one.
Input files are placed in /mnt/data when the session starts or when they first appear among the run's files.

A session's memory is capped as a whole (`cgroups`), and its disk use is checked while its cell runs, every
`kernel.WATCH_SECONDS`: past `limits.CODE_INTERPRETER_SESSION_DISK_BYTES` the session ends. A cell may write
past the cap only for that long, each file at most `MAX_FILE_BYTES` (RLIMIT_FSIZE). (A size-capped /mnt/data
would need a file system per session: a tmpfs is memory, which the session's memory cap would count, and a
loop device or project quota is not available on every host.)

Sessions live in the server process (its kernels are its children): with several replicas behind a balancer
a thread's next call may reach another replica and start a new session there.
"""

from __future__ import annotations

import logging
import os
import secrets
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from emulator import limits
from emulator.sandbox import cgroups, files
from emulator.sandbox.isolation import Launcher, Mode, build_font_cache
from emulator.sandbox.kernel import MAX_FILE_BYTES, Kernel, KernelEnded, SandboxError, Watch

log = logging.getLogger("emulator.sandbox")

IDLE_SECONDS = 3600
"""A session unused this long (emulator time) ends."""
MAX_SESSIONS = 32
"""Live kernels per server; starting one more ends the least recently used."""
_UID_LOW = 100_000_000
_UID_HIGH = 2**31 - 2
"""Session uids are drawn at random from this range, never one a process runs as: a uid is not reused by a
later session of this server, after a restart, nor (with high probability) by another replica."""


@dataclass(frozen=True)
class InputFile:
    file_id: str
    name: str
    path: Path


@dataclass(frozen=True)
class Execution:
    logs: str
    created: list[Path] = field(default_factory=list)
    """Files the cell created or changed in /mnt/data, and its figures, copied out (sorted by `name`)."""
    names: dict[Path, str] = field(default_factory=dict)
    """The name of each of `created`: its path under /mnt/data (`sub/x.csv`), made safe."""
    images: list[Path] = field(default_factory=list)
    """The figures the cell left open (PNG), copied out."""
    workdir: Path | None = None
    new_session: str | None = None
    """The id of the session this call started (None: an existing one ran the cell)."""

    def name(self, path: Path) -> str:
        return self.names.get(path, path.name)


@dataclass
class _Session:
    id: str
    tenant: str
    thread_id: str
    directory: Path
    uid: int
    last_used: int
    kernel: Kernel | None = None
    """None until it has started (its starter holds `lock` meanwhile)."""
    group: cgroups.SessionGroup | None = None
    """Its memory cgroup, if the server could make one."""
    placed: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    """Held while the session starts or runs a cell: ending or evicting it waits for neither."""

    @property
    def data(self) -> Path:
        return self.directory / "data"


class Sandbox:
    """The server's code_interpreter sessions, by thread."""

    def __init__(self, launcher: Launcher, root: Path, timeout_seconds: int = limits.CODE_INTERPRETER_TIMEOUT_SECONDS):
        self.launcher = launcher
        self.root = root
        self.timeout_seconds = timeout_seconds
        self._sessions: dict[str, _Session] = {}
        self._lock = threading.Lock()
        self.font_cache = root / "matplotlib"
        self._groups = cgroups.MemoryGroups.create() if launcher.mode is Mode.ISOLATED else None
        if launcher.mode is Mode.ISOLATED:
            threading.Thread(target=build_font_cache, args=(self.font_cache,), name="font-cache", daemon=True).start()

    @property
    def mode(self) -> Mode:
        return self.launcher.mode

    def execute(self, *, tenant: str, thread_id: str, now: int, code: str, inputs: Iterable[InputFile],
                stop: Callable[[], str | None] | None = None) -> Execution:
        """Run `code` in the thread's session (started when there is none); `SandboxError` when the sandbox
        itself fails. `stop`, checked while the cell runs, says why the cell must end now (its kernel is stopped,
        the session with it), or None. The caller removes `Execution.workdir` when done with the outputs."""
        if self.mode is Mode.UNAVAILABLE:
            raise SandboxError(
                f"code_interpreter is unavailable on this server: {self.launcher.reason}. The operator may start "
                "it with --unsafe-code-execution to run code without isolation."
            )
        self.end_idle(now, tenant)
        session, started = self._session_for(tenant, thread_id, now)
        try:
            assert session.kernel is not None
            notes = self._place(session, inputs)
            before = files.snapshot(session.data)
            killed = session.group.oom_kills() if session.group is not None else 0
            threads, idle = 1, True
            try:
                reply = session.kernel.run(code, self.timeout_seconds, self._watch(session, stop))
                logs, images, threads, idle = reply.logs, reply.images, reply.threads, reply.idle
                if session.group is not None and session.group.oom_kills() > killed:
                    notes.append(f"[a process of the cell was killed: it ran out of memory (a session has "
                                 f"{limits.CODE_INTERPRETER_MEMORY_BYTES // 2**20} MB in all)]\n")
            except KernelEnded as ended:
                out_of_memory = session.group is not None and session.group.oom_kills() > killed
                self._discard(session)
                logs, images = (_OUT_OF_MEMORY if out_of_memory else ended.logs), []
            except SandboxError:
                self._discard(session)
                raise
            session.last_used = now
            workdir = Path(tempfile.mkdtemp(prefix="outputs-", dir=self.root))
            after = files.snapshot(session.data)
            created, names, copy_notes = self._copy_created(session, before, after, workdir)
            notes += copy_notes
            pictures = self._write_images(images, workdir)
            names.update((picture, picture.name) for picture in pictures)
            ending = _reason_to_end(files.disk_bytes(session.data, after), threads, idle)
            if ending is not None:
                notes.append(ending)
            if ending is not None or not self._is_current(session):  # or ended (thread deleted) while it ran
                self._discard(session)
        finally:
            session.lock.release()
        logs = "".join(notes) + logs
        return Execution(logs=logs, created=sorted(created + pictures, key=names.__getitem__), names=names,
                         images=pictures, workdir=workdir, new_session=session.id if started else None)

    def _watch(self, session: _Session, stop: Callable[[], str | None] | None) -> Watch:
        """What is checked while the session's cell runs: the caller's `stop`, its disk use, and, where no
        cgroup caps its memory and it has a uid of its own, its processes' resident memory."""
        by_uid = session.group is None and self.launcher.mode is Mode.ISOLATED and self.launcher.as_root

        def check() -> str | None:
            reason = stop() if stop is not None else None
            if reason is not None:
                return reason
            used = files.disk_bytes(session.data, files.snapshot(session.data))
            if used > limits.CODE_INTERPRETER_SESSION_DISK_BYTES:
                return _DISK_FULL
            if by_uid and cgroups.resident_bytes(session.uid) > limits.CODE_INTERPRETER_MEMORY_BYTES:
                return _OUT_OF_MEMORY
            return None

        return check

    def _session_for(self, tenant: str, thread_id: str, now: int) -> tuple[_Session, bool]:
        """The thread's live session, its lock held by the caller (started, under its lock, when there is none:
        concurrent calls of one thread wait for the one kernel it starts)."""
        while True:
            with self._lock:
                found = self._sessions.get(thread_id)
                if found is None:
                    session = self._reserve(tenant, thread_id, now)
                    break
            found.lock.acquire()
            if self._is_current(found) and found.kernel is not None and found.kernel.alive:
                return found, False
            self._discard(found)
            found.lock.release()
        try:
            self._make_room()
            self._start(session)
        except BaseException:
            self._discard(session)
            session.lock.release()
            raise
        return session, True

    def _reserve(self, tenant: str, thread_id: str, now: int) -> _Session:
        """A session registered for the thread, locked, its kernel not started yet (the caller holds `_lock`)."""
        session_id = f"cisession_{uuid.uuid4().hex[:24]}"
        uid = _fresh_uid()
        session = _Session(session_id, tenant, thread_id, self.root / session_id, uid, now)
        session.lock.acquire()
        self._sessions[thread_id] = session
        return session

    def _start(self, session: _Session) -> None:
        session.directory.mkdir(mode=0o700)  # the host's other users see nothing of a session
        session.data.mkdir()
        if self.launcher.mode is Mode.ISOLATED and self.launcher.as_root:
            os.chown(session.data, session.uid, session.uid)
        session.group = self._groups.session(session.id, limits.CODE_INTERPRETER_MEMORY_BYTES) if self._groups else None
        session.kernel = Kernel.start(self.launcher, session.data, session.uid, self.timeout_seconds, self.font_cache,
                                      session.group.procs if session.group is not None else None)
        log.info("code_interpreter session %s started for thread %s (%s)", session.id, session.thread_id,
                 self.mode.value)

    def _is_current(self, session: _Session) -> bool:
        with self._lock:
            return self._sessions.get(session.thread_id) is session

    def _place(self, session: _Session, inputs: Iterable[InputFile]) -> list[str]:
        notes = []
        owner = session.uid if self.launcher.mode is Mode.ISOLATED and self.launcher.as_root else None
        for item in inputs:
            if item.file_id in session.placed:
                continue
            try:
                files.place(session.data, files.safe_name(item.name), item.path, owner)
            except OSError as error:
                notes.append(f"[the file {item.file_id} could not be placed in /mnt/data: {error.strerror}]\n")
            session.placed.add(item.file_id)
        return notes

    def _copy_created(self, session: _Session, before: files.Snapshot, after: files.Snapshot,
                      workdir: Path) -> tuple[list[Path], dict[Path, str], list[str]]:
        """Copy out the files the cell made or changed, within the per-cell caps, with their names; notes for
        the logs name the ones not returned."""
        changed = [(relative, stamp) for relative, stamp in sorted(after.files.items())
                   if before.files.get(relative) != stamp]
        created: list[Path] = []
        names: dict[Path, str] = {}
        left: list[str] = []
        total = 0
        for relative, (size, _) in changed:
            too_many = len(created) >= limits.CODE_INTERPRETER_MAX_OUTPUT_FILES
            if too_many or size > MAX_FILE_BYTES or total + size > limits.CODE_INTERPRETER_MAX_OUTPUT_BYTES:
                left.append(relative)
                continue
            target = workdir / f"{len(created)}" / files.display_path(relative).rpartition("/")[2]
            target.parent.mkdir()
            if files.copy_out(session.data, relative, target, MAX_FILE_BYTES):
                created.append(target)
                names[target] = files.display_path(relative)
                total += target.stat().st_size
        return created, names, _not_returned(left, after.complete)

    def _write_images(self, images: list[bytes], workdir: Path) -> list[Path]:
        written = []
        for index, content in enumerate(images):
            target = workdir / "figures" / f"figure-{index + 1}.png"
            target.parent.mkdir(exist_ok=True)
            target.write_bytes(content)
            written.append(target)
        return written

    def tenants(self) -> set[str]:
        """The tenants that have a live session (each has a clock of its own to judge idleness by)."""
        with self._lock:
            return {found.tenant for found in self._sessions.values()}

    def end_idle(self, now: int, tenant: str) -> None:
        """End the tenant's sessions unused for `IDLE_SECONDS` at its emulator time `now`."""
        with self._lock:
            idle = [found for found in self._sessions.values()
                    if found.tenant == tenant and now - found.last_used >= IDLE_SECONDS]
        for session in idle:
            self._end_unless_busy(session)

    def _make_room(self) -> None:
        """End the least recently used sessions that run no cell, down to `MAX_SESSIONS`."""
        with self._lock:
            surplus = len(self._sessions) - MAX_SESSIONS
            oldest = sorted(self._sessions.values(), key=lambda session: session.last_used)
        for session in oldest:
            if surplus <= 0:
                return
            surplus -= self._end_unless_busy(session)

    def _end_unless_busy(self, session: _Session) -> bool:
        if not session.lock.acquire(blocking=False):
            return False
        try:
            self._discard(session)
        finally:
            session.lock.release()
        return True

    def _discard(self, session: _Session) -> None:
        """Unregister the session (unless a newer one of its thread took its place), stop its kernel, remove its
        files."""
        with self._lock:
            if self._sessions.get(session.thread_id) is session:
                del self._sessions[session.thread_id]
        if session.kernel is not None:
            session.kernel.stop()
        if session.group is not None:
            session.group.remove()
        if session.directory.exists():
            files.remove_tree(session.directory)
            log.info("code_interpreter session %s of thread %s ended", session.id, session.thread_id)

    def end(self, thread_id: str) -> None:
        """End the thread's session, if any: its kernel stops and its files are removed. A cell it is running
        ends with it (its call removes the files when it is done with them)."""
        with self._lock:
            session = self._sessions.pop(thread_id, None)
        if session is None:
            return
        if self._end_unless_busy(session):
            return
        if session.kernel is not None:
            session.kernel.stop()

    def close(self) -> None:
        with self._lock:
            sessions = list(self._sessions.values())
            self._sessions.clear()
        for session in sessions:
            if session.kernel is not None:
                session.kernel.stop()
            files.remove_tree(session.directory)
        if self._groups is not None:
            self._groups.close()


def _fresh_uid() -> int:
    """A uid no process runs as, at random in a wide range (see `_UID_LOW`)."""
    while True:
        uid = _UID_LOW + secrets.randbelow(_UID_HIGH - _UID_LOW)
        if uid not in _running_uids():
            return uid


def _running_uids() -> set[int]:
    found = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            found.add(entry.stat().st_uid)
        except OSError:
            continue
    return found


def _not_returned(left: list[str], complete: bool) -> list[str]:
    notes = []
    if left:
        shown = ", ".join(files.display_path(relative) for relative in left[:20])
        more = f" and {len(left) - 20} more" if len(left) > 20 else ""
        notes.append(f"[{len(left)} files were not returned (at most {limits.CODE_INTERPRETER_MAX_OUTPUT_FILES} "
                     f"files and {limits.CODE_INTERPRETER_MAX_OUTPUT_BYTES // 2**20} MB per cell, "
                     f"{MAX_FILE_BYTES // 2**20} MB per file): {shown}{more}]\n")
    if not complete:
        notes.append(f"[/mnt/data holds more than {files.MAX_ENTRIES} entries or {files.MAX_DEPTH} levels of "
                     "directories: files beyond them were not looked at]\n")
    return notes


_DISK_FULL = (f"[/mnt/data holds more than {limits.CODE_INTERPRETER_SESSION_DISK_BYTES // 2**30} GB: the session "
              "was reset and its files removed]\n")
_OUT_OF_MEMORY = (f"The code_interpreter session ran out of memory ({limits.CODE_INTERPRETER_MEMORY_BYTES // 2**20} "
                  "MB in all) and ended; its state is lost.")


def _reason_to_end(disk_bytes: int, threads: int, idle: bool) -> str | None:
    """Why the session must end after this cell, if it must: more on disk than a session may keep, a thread
    of the cell still running in the kernel (it would run between cells, past the CPU limit), or a kernel not
    waiting for the next cell after its answer (a cell that answered for itself and runs on)."""
    if disk_bytes > limits.CODE_INTERPRETER_SESSION_DISK_BYTES:
        return _DISK_FULL
    if threads > 1:
        return "[a thread the cell started was still running after it: the session was reset]\n"
    if not idle:
        return "[the cell was still running after its kernel answered: the session was reset]\n"
    return None
