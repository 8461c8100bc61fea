"""The memory of a session as a whole: a memory cgroup per session, or, where the server cannot make one, a
watch of its processes' resident memory.

RLIMIT_AS caps each process of a session, not their sum: without a group, a cell's children may each take
the whole allowance. The server makes a child of its own memory cgroup (cgroup v1, or v2 where its cgroup
delegates the memory controller) for this process (`emulator-proc-...`, its leftovers removed once the process
is gone, like the sandbox's directories), and one per session under it with the session's limit (swap
included where it is counted). The kernel's process enters it before bubblewrap starts, so every process of
the session is counted, its memory-backed /tmp too; past the limit the kernel's OOM killer ends the largest
process of the session (a child of the cell, or the kernel: the session then ends).

Without cgroups (no rights, no controller), when the server runs as root each session has a uid of its own,
and the cell's wait sums the resident memory of that uid's processes every `WATCH_SECONDS`
(`resident_bytes`): past the limit the session is ended. That watch sees what is mapped in memory, not the
files of the session's /tmp, and lets an allocation run for up to `WATCH_SECONDS` before it ends it.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import resource
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from emulator import processes

log = logging.getLogger("emulator.sandbox")

_PREFIX = "emulator-"
_REMOVE_SECONDS = 5.0
_PAGE_BYTES = resource.getpagesize()


@dataclass(frozen=True)
class SessionGroup:
    """One session's memory cgroup."""

    path: Path
    version: int

    @property
    def procs(self) -> Path:
        """The file a process writes its pid to, to enter the group."""
        return self.path / "cgroup.procs"

    def oom_kills(self) -> int:
        """Processes of the group the OOM killer has ended so far."""
        name = "memory.oom_control" if self.version == 1 else "memory.events"
        try:
            lines = (self.path / name).read_text().splitlines()
        except OSError:
            return 0
        for line in lines:
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                return int(value)
        return 0

    def remove(self) -> None:
        """Kill whatever is left in the group and remove it (a process killed a moment ago may take a while to
        leave it); never raises."""
        _remove_group(self.path)


class MemoryGroups:
    """This server process's memory cgroup, parent of its sessions' groups."""

    def __init__(self, path: Path, version: int) -> None:
        self.path = path
        self.version = version

    @classmethod
    def create(cls) -> MemoryGroups | None:
        """This process's group under its own memory cgroup, leftovers of gone processes removed; None where no
        memory cgroup can be made here."""
        found = _own_memory_cgroup()
        if found is None:
            return None
        own, version = found
        for earlier in own.glob(f"{_PREFIX}proc-*"):
            identity = processes.from_directory_name(earlier.name.removeprefix(_PREFIX))
            if identity is not None and processes.is_gone(identity):
                for child in earlier.iterdir():
                    if child.is_dir():
                        _remove_group(child)
                _remove_group(earlier)
        mine = own / f"{_PREFIX}{processes.directory_name(processes.THIS_PROCESS)}"
        try:
            mine.mkdir(exist_ok=True)
            if version == 2:
                (mine / "cgroup.subtree_control").write_text("+memory")
        except OSError as error:
            log.info("no memory cgroup for code_interpreter sessions (%s): their memory is watched instead", error)
            return None
        return cls(mine, version)

    def session(self, name: str, limit_bytes: int) -> SessionGroup | None:
        """A group for one session, its memory capped at `limit_bytes`; None if it cannot be made."""
        path = self.path / name
        try:
            path.mkdir()
            if self.version == 1:
                (path / "memory.limit_in_bytes").write_text(str(limit_bytes))
                _write_if_there(path / "memory.memsw.limit_in_bytes", str(limit_bytes))
            else:
                (path / "memory.max").write_text(str(limit_bytes))
                _write_if_there(path / "memory.swap.max", "0")
        except OSError as error:
            log.warning("could not make a memory cgroup for a code_interpreter session: %s", error)
            _remove_group(path)
            return None
        return SessionGroup(path, self.version)

    def close(self) -> None:
        for child in self.path.iterdir() if self.path.is_dir() else []:
            if child.is_dir():
                _remove_group(child)
        _remove_group(self.path)


def _write_if_there(path: Path, value: str) -> None:
    """Swap is not counted on every machine (the file is missing, or refuses the value)."""
    with contextlib.suppress(OSError):
        path.write_text(value)


def _remove_group(path: Path) -> None:
    deadline = time.monotonic() + _REMOVE_SECONDS
    while path.is_dir():
        for pid in _pids(path):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        try:
            path.rmdir()
            return
        except OSError as error:
            if error.errno != errno.EBUSY or time.monotonic() > deadline:
                log.warning("could not remove the memory cgroup %s: %s", path, error)
                return
            time.sleep(0.01)


def _pids(path: Path) -> list[int]:
    try:
        return [int(line) for line in (path / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return []


def _own_memory_cgroup() -> tuple[Path, int] | None:
    """This process's memory cgroup directory and its cgroup version, from /proc/self/cgroup and the mounts."""
    try:
        memberships = Path("/proc/self/cgroup").read_text().splitlines()
        mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    v1 = next((line.split(":", 2)[2] for line in memberships
               if line.count(":") >= 2 and "memory" in line.split(":", 2)[1].split(",")), None)
    v2 = next((line.split(":", 2)[2] for line in memberships if line.startswith("0::")), None)
    for line in mounts:
        fields, _, tail = line.partition(" - ")
        parts, described = fields.split(), tail.split()
        if len(parts) < 5 or len(described) < 3:
            continue
        root, point, kind, options = parts[3], parts[4], described[0], described[2].split(",")
        if kind == "cgroup" and "memory" in options and v1 is not None:
            candidate = _inside(Path(point), root, v1)
            if candidate is not None:
                return candidate, 1
    for line in mounts:
        fields, _, tail = line.partition(" - ")
        parts, described = fields.split(), tail.split()
        if len(parts) >= 5 and described[:1] == ["cgroup2"] and v2 is not None:
            candidate = _inside(Path(parts[4]), parts[3], v2)
            if candidate is not None and "memory" in _read(candidate / "cgroup.subtree_control").split():
                return candidate, 2
    return None


def _inside(mount_point: Path, mount_root: str, group: str) -> Path | None:
    group_path = Path(group)
    if not group_path.is_relative_to(mount_root):
        return None
    candidate = mount_point / group_path.relative_to(mount_root)
    return candidate if candidate.is_dir() else None


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def resident_bytes(uid: int) -> int:
    """The resident memory of the processes running as `uid` (a session's own uid when the server is root)."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid != uid:
                continue
            with open(f"/proc/{entry.name}/statm", "rb") as statm:
                total += int(statm.read().split()[1]) * _PAGE_BYTES
        except (OSError, ValueError, IndexError):
            continue
    return total
