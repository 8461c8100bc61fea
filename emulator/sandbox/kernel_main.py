"""The kernel of a code_interpreter session: runs inside the sandbox, standard library only, never imported
by the server.

It reads one JSON request per line (`{"code": ...}`) and answers one JSON line per cell
`{"images": [base64 PNG, ...], "threads": n}`. Variables and imports live in one namespace for the life of the
session. A cell's output (fd 1 and 2, its child processes' included) goes to a pipe the server reads while the
cell runs. After each cell the open matplotlib figures come back as PNG images, and every other process of the
session is killed (nothing runs between cells).

argv: memory bytes, seconds of CPU per cell, max processes, max bytes per file, and `isolated` or `unsafe`
(only an isolated kernel, alone in its PID namespace, kills the other processes), the request fd and the reply
fd.
"""

import ast
import base64
import contextlib
import io
import json
import os
import resource
import shutil
import signal
import sys
import time
import traceback
import warnings

_MAX_IMAGES = 10
_KERNEL_PID = os.getpid()
_FONT_CACHE = "/opt/emulator/matplotlib"


def _limit(memory: int, processes: int, file_bytes: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    if processes:
        resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))


def _allow_cpu(seconds: int) -> None:
    """RLIMIT_CPU counts the process's whole life: each cell gets `seconds` more than the kernel has used."""
    used = resource.getrusage(resource.RUSAGE_SELF)
    spent = int(used.ru_utime + used.ru_stime) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (spent + seconds, resource.RLIM_INFINITY))


def _execute(source: str, namespace: dict[str, object]) -> None:
    """Run like a notebook cell: the value of a last bare expression is shown."""
    try:
        tree = ast.parse(source, "<cell>")
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        assert last is None or isinstance(last, ast.Expr)
        exec(compile(tree, "<cell>", "exec"), namespace)
        if last is not None:
            value = eval(compile(ast.Expression(last.value), "<cell>", "eval"), namespace)
            if value is not None:
                print(repr(value))
    except BaseException as error:
        traceback.print_exception(type(error), error, error.__traceback__.tb_next if error.__traceback__ else None)
    finally:
        if os.getpid() != _KERNEL_PID:  # a process the cell forked never goes on as the kernel
            os._exit(1)


def _figures() -> list[str]:
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is None:
        return []
    images = []
    try:
        for number in pyplot.get_fignums()[:_MAX_IMAGES]:
            buffer = io.BytesIO()
            pyplot.figure(number).savefig(buffer, format="png")
            images.append(base64.b64encode(buffer.getvalue()).decode("ascii"))
        pyplot.close("all")
    except Exception:
        traceback.print_exc()
    return images


def _kill_the_rest() -> None:
    with contextlib.suppress(OSError):
        os.kill(-1, signal.SIGKILL)  # every process of the session this kernel may signal, but itself
    _reap()


def _reap(seconds: float = 2.0) -> None:
    """Collect the killed children (no zombies pile up in the session); give up after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.01)


def _threads() -> int:
    """This process's threads: a thread the cell started would run on between cells, past the CPU limit."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 1


def _flush() -> None:
    """Flush the cell's buffered output; a stream the cell broke or closed is not the kernel's failure."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def _run_cell(source: str, namespace: dict[str, object], seconds: int, isolated: bool) -> list[str]:
    """Run the cell; the figures it left open."""
    _allow_cpu(seconds)
    try:
        _execute(source, namespace)
        images = _figures()
    finally:
        _flush()
        if isolated:
            _kill_the_rest()
    return images


def _copy_font_cache() -> None:
    """The server's prebuilt matplotlib font list, if any, into this session's config dir."""
    config = os.environ.get("MPLCONFIGDIR")
    if config and os.path.isdir(_FONT_CACHE) and not os.path.exists(config):
        with contextlib.suppress(OSError):
            shutil.copytree(_FONT_CACHE, config)


def main() -> None:
    memory, seconds, processes, file_bytes = (int(value) for value in sys.argv[1:5])
    isolated = sys.argv[5] == "isolated"
    requests = os.fdopen(int(sys.argv[6]), "r", encoding="utf-8")
    replies = os.fdopen(int(sys.argv[7]), "w", encoding="utf-8")
    os.environ.setdefault("MPLBACKEND", "Agg")
    _copy_font_cache()
    warnings.filterwarnings("ignore", message=".*non-interactive.*")
    _limit(memory, processes if isolated else 0, file_bytes)
    namespace: dict[str, object] = {"__name__": "__main__"}
    replies.write(json.dumps({"ready": True}) + "\n")
    replies.flush()
    for line in requests:
        request = json.loads(line)
        images = _run_cell(request["code"], namespace, seconds, isolated)
        replies.write(json.dumps({"images": images, "threads": _threads()}) + "\n")
        replies.flush()


if __name__ == "__main__":
    main()
