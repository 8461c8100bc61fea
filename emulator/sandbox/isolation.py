"""How a session's kernel process is started: inside bubblewrap, or, only when the operator asks for it, as a
plain subprocess.

Isolated (the default): `bwrap` gives the kernel its own mount, PID, network, IPC and UTS namespaces. Its root
is an empty tmpfs that shows, read-only, only the system's `/usr` (and its `/bin`, `/lib` links), the dynamic
loader's cache, the Python installation and the server's virtualenv (its site-packages: numpy, pandas,
matplotlib when the `code` extra is installed); writable are only the session's `/mnt/data` and a private,
size-capped `/tmp`. The network namespace has only its own loopback. The environment is fixed and empty of
the server's variables. When the server runs as root, the kernel runs as an unprivileged uid of its own per
session (`setpriv`, no capabilities, no new privileges), so that its process cap counts only its processes;
otherwise bwrap's user namespace maps it to the server's user.

bubblewrap rather than util-linux `unshare`: it builds the file system view from an allow-list in one call
(unshare would need a mount script of our own), mounts binds `nosuid`, ties the sandbox to its parent's life
(`--die-with-parent`), and runs unprivileged where user namespaces are allowed, as it does for Flatpak.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from emulator.sandbox import seccomp

KERNEL_SCRIPT = Path(__file__).with_name("kernel_main.py")
SANDBOX_KERNEL_PATH = "/opt/emulator/kernel.py"
SANDBOX_DATA = "/mnt/data"
SANDBOX_FONT_CACHE = "/opt/emulator/matplotlib"
"""matplotlib's font list, built once per server (`build_font_cache`): the kernel copies it into its /tmp
instead of spending about 2 s of each session's first plot building it."""
TMP_BYTES = 256 * 1024 * 1024
"""The private /tmp of a session (memory-backed): the cell's scratch space and its output capture."""

ENVIRONMENT = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": "/tmp",
    "TMPDIR": "/tmp",
    "LANG": "C.UTF-8",
    "MPLBACKEND": "Agg",
    "MPLCONFIGDIR": "/tmp/matplotlib",
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}
"""The kernel's whole environment: nothing of the server's leaks in (one BLAS thread: the process cap counts
threads)."""

_SYSTEM_LINKS = ("bin", "lib", "lib64", "sbin", "lib32", "libx32")
_SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/localtime", "/etc/mime.types", "/etc/fonts")


class Mode(StrEnum):
    ISOLATED = "isolated"
    UNSAFE = "unsafe"
    """Operator's choice (`--unsafe-code-execution`): a plain subprocess with the server's rights."""
    UNAVAILABLE = "unavailable"
    """No namespaces here and no opt-in: code_interpreter calls fail."""


@dataclass(frozen=True)
class Launcher:
    mode: Mode
    reason: str = ""
    """Why the sandbox is unavailable (or why unsafe mode was chosen)."""
    bwrap: str | None = None

    @property
    def as_root(self) -> bool:
        return os.geteuid() == 0

    def command(self, kernel_args: list[str], data_dir: Path, uid: int, font_cache: Path | None = None,
                seccomp_fd: int | None = None) -> list[str]:
        """The command that starts a kernel whose /mnt/data is `data_dir` (its `uid` when the server is root),
        under the seccomp filter in `seccomp_fd` (`seccomp.descriptor`), passed to the process."""
        if self.mode is Mode.UNSAFE:
            return [sys.executable, "-I", str(KERNEL_SCRIPT), *kernel_args]
        assert self.bwrap is not None
        python = [sys.executable, "-I", SANDBOX_KERNEL_PATH, *kernel_args]
        if self.as_root:
            namespaces = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
            python = [
                "/usr/bin/setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--no-new-privs",
                "--inh-caps=-all", "--bounding-set=-all", "--", *python,
            ]
        else:
            namespaces = ["--unshare-all"]
        return [
            self.bwrap, *namespaces, "--die-with-parent", "--new-session", "--hostname", "sandbox",
            *_read_only_system(), "--proc", "/proc", "--dev", "/dev",
            "--perms", "1777", "--size", str(TMP_BYTES), "--tmpfs", "/tmp",
            *_directory("/mnt"), "--bind", str(data_dir), SANDBOX_DATA,
            *_directory("/opt/emulator"), "--ro-bind", str(KERNEL_SCRIPT), SANDBOX_KERNEL_PATH,
            *(["--ro-bind", str(font_cache), SANDBOX_FONT_CACHE] if font_cache and font_cache.is_dir() else []),
            *(["--seccomp", str(seccomp_fd)] if seccomp_fd is not None else []),
            "--remount-ro", "/", "--chdir", SANDBOX_DATA, "--", *python,
        ]

    def working_directory(self, data_dir: Path) -> Path:
        """Where the process starts on the host: the unsafe kernel works in its data dir, as today's cells did."""
        return data_dir if self.mode is Mode.UNSAFE else Path("/")


def build_font_cache(target: Path) -> None:
    """Build matplotlib's font list into `target` (nothing when matplotlib is not installed)."""
    staging = target.with_name(f"{target.name}.building")
    shutil.rmtree(staging, ignore_errors=True)
    environment = {**ENVIRONMENT, "MPLCONFIGDIR": str(staging), "HOME": str(staging)}
    try:
        done = subprocess.run([sys.executable, "-I", "-c", "import matplotlib.font_manager"], env=environment,
                              capture_output=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired):
        done = None
    if done is not None and done.returncode == 0 and staging.is_dir():
        staging.rename(target)
    else:
        shutil.rmtree(staging, ignore_errors=True)


def _directory(path: str) -> list[str]:
    """bwrap makes missing parents 0700 when run as root: each level is made readable explicitly."""
    parts = Path(path).parts[1:]
    out: list[str] = []
    for depth in range(1, len(parts) + 1):
        out += ["--perms", "0755", "--dir", "/" + "/".join(parts[:depth])]
    return out


def _python_roots() -> list[Path]:
    roots = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), Path(sys.executable).resolve().parent.parent}
    return sorted(root for root in roots if not root.is_relative_to("/usr"))


def _read_only_system() -> list[str]:
    out = ["--ro-bind", "/usr", "/usr"]
    for name in _SYSTEM_LINKS:
        host = Path("/") / name
        if host.is_symlink():
            out += ["--symlink", os.readlink(host), str(host)]
        elif host.is_dir():
            out += ["--ro-bind", str(host), str(host)]
    out += _directory("/etc")
    out += [arg for file in _SYSTEM_FILES if Path(file).exists() for arg in ("--ro-bind", file, file)]
    for root in _python_roots():
        out += _directory(str(root.parent)) if root.parent != Path("/") else []
        out += ["--ro-bind", str(root), str(root)]
    return out


def choose(*, unsafe: bool) -> Launcher:
    """The launcher for this machine: unsafe when asked, else bubblewrap when it can start a process here."""
    if unsafe:
        return Launcher(Mode.UNSAFE, "--unsafe-code-execution / EMULATOR_UNSAFE_CODE_EXECUTION is set")
    if not sys.platform.startswith("linux"):
        return Launcher(Mode.UNAVAILABLE, f"Linux namespaces are not available on {sys.platform}")
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return Launcher(Mode.UNAVAILABLE, "bubblewrap (`bwrap`) is not installed (Debian/Ubuntu: apt-get install "
                        "bubblewrap)")
    if os.geteuid() == 0 and not Path("/usr/bin/setpriv").exists():
        return Launcher(Mode.UNAVAILABLE, "/usr/bin/setpriv (util-linux) is missing: needed to drop root in the "
                        "sandbox")
    launcher = Launcher(Mode.ISOLATED, bwrap=bwrap)
    failure = _try(launcher)
    return launcher if failure is None else Launcher(Mode.UNAVAILABLE, failure)


def _try(launcher: Launcher) -> str | None:
    """Start a trivial sandboxed process; why it failed, or None."""
    filter_fd = seccomp.descriptor()
    with tempfile.TemporaryDirectory(prefix="emulator-sandbox-probe-") as empty:
        command = launcher.command([], Path(empty), _PROBE_UID, seccomp_fd=filter_fd)
        script_at = len(command) - 1 - command[::-1].index(SANDBOX_KERNEL_PATH)
        command[script_at:] = ["-c", "print('ok')"]
        try:
            done = subprocess.run(command, env=ENVIRONMENT, capture_output=True, timeout=30, check=False,
                                  pass_fds=() if filter_fd is None else (filter_fd,))
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"bubblewrap could not start a process: {error}"
        finally:
            if filter_fd is not None:
                os.close(filter_fd)
    if done.stdout.strip() != b"ok":
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
        return f"bubblewrap could not start a process here: {detail[-1] if detail else f'exit {done.returncode}'}"
    return None


_PROBE_UID = 1_499_999_999
