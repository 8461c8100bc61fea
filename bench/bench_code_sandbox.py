"""Start cost of a code_interpreter session and of a cell in a live one (p50/p99 ms), in the sandbox and, for
comparison, in unsafe mode.

    python bench/bench_code_sandbox.py                 # 50 sessions, 200 cells per mode
    python bench/bench_code_sandbox.py --sessions 20 --cells 100

A session's start is its first cell (`print(1)`) on a new thread: bubblewrap sets up the namespaces, Python
starts, the kernel answers. A cell is `print(1)` in a session that has run one already. Measured through
`emulator.sandbox.Sandbox.execute` (what the run executor calls), without HTTP or the database.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from emulator.sandbox import Mode, Sandbox, choose


def _percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return f"p50 {statistics.median(ordered) * 1000:7.1f} ms   p99 {p99 * 1000:7.1f} ms   (n={len(ordered)})"


def _measure(sandbox: Sandbox, sessions: int, cells: int) -> tuple[list[float], list[float]]:
    starts, runs = [], []
    for index in range(sessions):
        began = time.perf_counter()
        sandbox.execute(tenant="bench", thread_id=f"thread_{index}", now=0, code="print(1)", inputs=[])
        starts.append(time.perf_counter() - began)
        sandbox.end(f"thread_{index}")
    sandbox.execute(tenant="bench", thread_id="warm", now=0, code="print(1)", inputs=[])
    for _ in range(cells):
        began = time.perf_counter()
        sandbox.execute(tenant="bench", thread_id="warm", now=0, code="print(1)", inputs=[])
        runs.append(time.perf_counter() - began)
    sandbox.close()
    return starts, runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--cells", type=int, default=200)
    args = parser.parse_args()
    for unsafe in (False, True):
        launcher = choose(unsafe=unsafe)
        if launcher.mode is Mode.UNAVAILABLE:
            print(f"{launcher.mode.value}: {launcher.reason}")
            continue
        with tempfile.TemporaryDirectory(prefix="bench-sandbox-") as root:
            starts, runs = _measure(Sandbox(launcher, Path(root)), args.sessions, args.cells)
        print(f"{launcher.mode.value:9} session start (first cell)  {_percentiles(starts)}")
        print(f"{launcher.mode.value:9} cell in a live session      {_percentiles(runs)}")


if __name__ == "__main__":
    main()
