"""Which server process this is, and whether another one is gone: replicas may share a host name, a data dir
and (in containers) even their pid, so a process is named by its machine's boot, its PID namespace, its pid and
its start time (a pid reused later is another process)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _namespace() -> int | None:
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return None


def _started(pid: int) -> str | None:
    """The process's start time (in clock ticks since boot, /proc/<pid>/stat field 22); None when it is gone."""
    stat = _read(f"/proc/{pid}/stat")
    if stat is None:
        return None
    fields = stat.rpartition(")")[2].split()  # after the command name, which may hold spaces
    return fields[19] if len(fields) > 19 else None


def _identity() -> dict[str, Any]:
    pid = os.getpid()
    return {"boot": _read("/proc/sys/kernel/random/boot_id"), "pidns": _namespace(), "pid": pid,
            "started": _started(pid)}


THIS_PROCESS: dict[str, Any] = _identity()
"""This server process (JSON-serializable)."""


def _knowable(identity: dict[str, Any]) -> bool:
    """Its liveness can be checked from here: the same machine's boot and the same PID namespace as ours."""
    return (THIS_PROCESS["boot"] is not None and THIS_PROCESS["pidns"] is not None
            and identity.get("boot") == THIS_PROCESS["boot"] and identity.get("pidns") == THIS_PROCESS["pidns"])


def is_this_process(identity: dict[str, Any]) -> bool:
    return _knowable(identity) and identity.get("pid") == THIS_PROCESS["pid"] and (
        identity.get("started") == THIS_PROCESS["started"]
    )


def is_gone(identity: dict[str, Any]) -> bool:
    """The process is known to have ended. One that cannot be checked from here (another machine, container or
    namespace) is never gone: its claims are waited out."""
    if not _knowable(identity):
        return False
    pid = identity.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    started = _started(pid)
    return started is None or started != identity.get("started")


def directory_name(identity: dict[str, Any]) -> str:
    """A directory name that names the process (`from_directory_name` reads it back)."""
    return f"proc-{identity['boot']}-{identity['pidns']}-{identity['pid']}-{identity['started']}"


def from_directory_name(name: str) -> dict[str, Any] | None:
    parts = name.removeprefix("proc-").rsplit("-", 3)
    if not name.startswith("proc-") or len(parts) != 4 or not parts[1].isdigit() or not parts[2].isdigit():
        return None
    return {"boot": parts[0], "pidns": int(parts[1]), "pid": int(parts[2]), "started": parts[3]}
