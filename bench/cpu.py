"""What the processes cost during a phase: CPU ticks from /proc (server, generator, the benchmark database's
PostgreSQL backends, the whole machine) and a server's RSS."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path


def read_rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return -1


def cpu_ticks(pid: int) -> int:
    """utime + stime of a process (all its threads), in clock ticks."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return 0


def machine_busy_ticks() -> int:
    """Busy (not idle, not iowait) clock ticks of all CPUs since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(values[:8]) - values[3] - values[4]


def db_ticks(dbname: str | None) -> dict[int, int]:
    """CPU ticks of the PostgreSQL backends serving `dbname` (their process title names the database)."""
    if not dbname:
        return {}
    found: dict[int, int] = {}
    marker = f" {dbname} ".encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                title = (entry / "cmdline").read_bytes()
                if title.startswith(b"postgres: ") and marker in title:
                    found[int(entry.name)] = cpu_ticks(int(entry.name))
    return found


class CpuMeter:
    """CPU used during a phase by the server, the generator, the PostgreSQL backends of the benchmark's
    database (if any), and everything else on the machine (other processes compete for the 2 cores: a high
    'other' share means the figures of that phase are disturbed)."""

    def __init__(self, server_pid: int, generator_pid: int, dbname: str | None = None) -> None:
        self.pids = (server_pid, generator_pid)
        self.dbname = dbname
        self.start = time.monotonic()
        self.db_before = db_ticks(dbname)
        self.before = (cpu_ticks(server_pid), cpu_ticks(generator_pid), machine_busy_ticks())

    def stop(self, requests: int) -> dict[str, float]:
        wall = time.monotonic() - self.start
        srv, gen, busy = cpu_ticks(self.pids[0]), cpu_ticks(self.pids[1]), machine_busy_ticks()
        db_after = db_ticks(self.dbname)
        tick = os.sysconf("SC_CLK_TCK")
        d_srv, d_gen = (srv - self.before[0]) / tick, (gen - self.before[1]) / tick
        d_db = sum(v - self.db_before.get(pid, 0) for pid, v in db_after.items()) / tick
        d_busy = (busy - self.before[2]) / tick
        return {
            "srv_cpu": d_srv / wall * 100, "gen_cpu": d_gen / wall * 100, "db_cpu": d_db / wall * 100,
            "other_cpu": max(0.0, d_busy - d_srv - d_gen - d_db) / wall * 100,
            "srv_ms_per_req": d_srv * 1000 / requests if requests else float("nan"),
            "db_ms_per_req": d_db * 1000 / requests if requests else float("nan"),
        }
