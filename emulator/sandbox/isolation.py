"""How a session's kernel process is started: inside bubblewrap, or, only when the operator asks for it, as a
plain subprocess.

Isolated (the default): `bwrap` gives the kernel its own mount, PID, network, IPC and UTS namespaces. Its root
is an empty tmpfs that shows, read-only, only the system's `/usr` (and its `/bin`, `/lib` links), the dynamic
loader's cache, and the server's Python at neutral paths (`python_layout`): its installation at `/opt/python`
and its virtualenv's libraries (numpy, pandas, matplotlib when the `code` extra is installed) at `/opt/venv`,
so that nothing of `/root` or `/home` is there. Writable are only the session's `/mnt/data` and a private,
size-capped `/tmp`. The network namespace has only its own loopback. The environment is fixed and empty of
the server's variables. bwrap reads its arguments from a descriptor (`--args`): the sandbox's init process
(bwrap itself) shows no host path in its command line. When the server runs as root, the kernel runs as an
unprivileged uid of its own per session (`setpriv`, no capabilities, no new privileges), so that its process
cap counts only its processes; otherwise bwrap's user namespace maps it to the server's user. When the
session has a memory cgroup (`cgroups`), the process enters it before bwrap starts (a shell that writes its
own pid there, then becomes bwrap).

bubblewrap rather than util-linux `unshare`: it builds the file system view from an allow-list in one call
(unshare would need a mount script of our own), mounts binds `nosuid`, ties the sandbox to its parent's life
(`--die-with-parent`), and runs unprivileged where user namespaces are allowed, as it does for Flatpak.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from pathlib import Path

from emulator.sandbox import seccomp

KERNEL_SCRIPT = Path(__file__).with_name("kernel_main.py")
SANDBOX_KERNEL_PATH = "/opt/emulator/kernel.py"
SANDBOX_DATA = "/mnt/data"
SANDBOX_PYTHON = "/opt/python"
SANDBOX_VENV = "/opt/venv"
SANDBOX_FONT_CACHE = "/opt/emulator/matplotlib"
"""matplotlib's font list, built once per server (`build_font_cache`): the kernel copies it into its /tmp
instead of spending about 2 s of each session's first plot building it."""
TMP_BYTES = 256 * 1024 * 1024
"""The private /tmp of a session (memory-backed: it counts in the session's memory)."""

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
threads). An isolated kernel may also get `LD_LIBRARY_PATH` (`python_layout`)."""

_SYSTEM_LINKS = ("bin", "lib", "lib64", "sbin", "lib32", "libx32")
_SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/localtime", "/etc/mime.types", "/etc/fonts")
_SHELL = "/bin/sh"


class Mode(StrEnum):
    ISOLATED = "isolated"
    UNSAFE = "unsafe"
    """Operator's choice (`--unsafe-code-execution`): a plain subprocess with the server's rights."""
    UNAVAILABLE = "unavailable"
    """No namespaces here and no opt-in: code_interpreter calls fail."""


@dataclass(frozen=True)
class PythonLayout:
    """The server's Python as the sandbox shows it."""

    executable: str
    """The interpreter's path in the sandbox."""
    binds: list[str]
    """bwrap arguments that mount it."""
    environment: dict[str, str] = field(default_factory=dict)
    venv_config: bytes | None = None
    """The `pyvenv.cfg` of the virtualenv at `SANDBOX_VENV` (None: no virtualenv)."""


@cache
def python_layout() -> PythonLayout:
    """The base installation at `SANDBOX_PYTHON` (CPython finds its prefix from its executable's place), the
    virtualenv's `lib` at `SANDBOX_VENV` with a `pyvenv.cfg` naming that base. A Python under /usr is already
    there. A shared libpython found through an absolute run path (pyenv's) is found through `LD_LIBRARY_PATH`."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    base = Path(sys.base_prefix).resolve()
    binds: list[str] = []
    environment: dict[str, str] = {}
    if base.is_relative_to("/usr"):
        executable = str(base / "bin" / version)
    elif (base / "bin" / version).is_file():
        executable = f"{SANDBOX_PYTHON}/bin/{version}"
        binds += [*_directory("/opt"), "--ro-bind", str(base), SANDBOX_PYTHON]
        libdir = Path(str(sysconfig.get_config_var("LIBDIR") or "")).resolve()
        if sysconfig.get_config_var("Py_ENABLE_SHARED") and libdir.is_relative_to(base):
            environment["LD_LIBRARY_PATH"] = f"{SANDBOX_PYTHON}/{libdir.relative_to(base)}"
    else:  # an unusual installation: shown at its own path
        executable = str(Path(sys.executable).resolve())
        for root in sorted({base, Path(executable).parent.parent}):
            binds += [*(_directory(str(root.parent)) if root.parent != Path("/") else []),
                      "--ro-bind", str(root), str(root)]
    venv = Path(sys.prefix).resolve()
    if venv == base or not (venv / "lib").is_dir():
        return PythonLayout(executable, binds, environment)
    binds += [*_directory(f"{SANDBOX_VENV}/bin"), "--ro-bind", str(venv / "lib"), f"{SANDBOX_VENV}/lib",
              "--symlink", executable, f"{SANDBOX_VENV}/bin/python3"]
    lib64 = venv / "lib64"  # where `sys.platlibdir` is lib64: a link to lib, or a directory of its own
    if lib64.is_symlink() and lib64.resolve() == (venv / "lib").resolve():
        binds += ["--symlink", "lib", f"{SANDBOX_VENV}/lib64"]
    elif lib64.is_dir() and not lib64.is_symlink():
        binds += ["--ro-bind", str(lib64), f"{SANDBOX_VENV}/lib64"]
    config = (f"home = {Path(executable).parent}\ninclude-system-site-packages = "
              f"{'true' if _includes_system_site_packages(venv) else 'false'}\nversion = "
              f"{'.'.join(map(str, sys.version_info[:3]))}\n")
    return PythonLayout(f"{SANDBOX_VENV}/bin/python3", binds, environment, config.encode())


def _includes_system_site_packages(venv: Path) -> bool:
    try:
        lines = (venv / "pyvenv.cfg").read_text().splitlines()
    except OSError:
        return False
    settings = {key.strip(): value.strip() for key, _, value in (line.partition("=") for line in lines)}
    return settings.get("include-system-site-packages", "false").lower() == "true"


@dataclass
class Launch:
    """A command and the descriptors it needs passed (`pass_fds`); the caller closes them once it started."""

    argv: list[str]
    fds: tuple[int, ...] = ()

    def close(self) -> None:
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)


@dataclass(frozen=True)
class Launcher:
    mode: Mode
    reason: str = ""
    """Why the sandbox is unavailable (or why unsafe mode was chosen)."""
    bwrap: str | None = None

    @property
    def as_root(self) -> bool:
        return os.geteuid() == 0

    def launch(self, kernel_args: list[str] | None, data_dir: Path, uid: int, font_cache: Path | None = None,
               cgroup_procs: Path | None = None) -> Launch:
        """The command that starts a kernel whose /mnt/data is `data_dir` (its `uid` when the server is root),
        under the seccomp filter, in the memory cgroup whose `cgroup.procs` is `cgroup_procs`, if any. Without
        `kernel_args`, the command prints `ok` (the probe of `choose`)."""
        if self.mode is Mode.UNSAFE:
            program = [str(KERNEL_SCRIPT), *kernel_args] if kernel_args is not None else ["-c", "print('ok')"]
            return Launch([sys.executable, "-I", *program])
        assert self.bwrap is not None
        layout = python_layout()
        program = [SANDBOX_KERNEL_PATH, *kernel_args] if kernel_args is not None else ["-c", "print('ok')"]
        python = [layout.executable, "-I", *program]
        if self.as_root:
            namespaces = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
            python = [
                "/usr/bin/setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--no-new-privs",
                "--inh-caps=-all", "--bounding-set=-all", "--", *python,
            ]
        else:
            namespaces = ["--unshare-all"]
        fds: list[int] = []
        filter_fd = seccomp.descriptor()
        if filter_fd is not None:
            fds.append(filter_fd)
        venv_config: list[str] = []
        if layout.venv_config is not None:
            fds.append(_memory_file("pyvenv.cfg", layout.venv_config))
            venv_config = ["--perms", "0644", "--ro-bind-data", str(fds[-1]), f"{SANDBOX_VENV}/pyvenv.cfg"]
        arguments = [
            *namespaces, "--die-with-parent", "--new-session", "--hostname", "sandbox",
            *_read_only_system(), *layout.binds, *venv_config, "--proc", "/proc", "--dev", "/dev",
            "--perms", "1777", "--size", str(TMP_BYTES), "--tmpfs", "/tmp",
            *_directory("/mnt"), "--bind", str(data_dir), SANDBOX_DATA,
            *_directory("/opt/emulator"), "--ro-bind", str(KERNEL_SCRIPT), SANDBOX_KERNEL_PATH,
            *(["--ro-bind", str(font_cache), SANDBOX_FONT_CACHE] if font_cache and font_cache.is_dir() else []),
            *(["--seccomp", str(filter_fd)] if filter_fd is not None else []),
            *(arg for name, value in layout.environment.items() for arg in ("--setenv", name, value)),
            "--remount-ro", "/", "--chdir", SANDBOX_DATA,
        ]
        fds.append(_memory_file("bwrap-args", b"".join(arg.encode() + b"\0" for arg in arguments)))
        argv = [self.bwrap, "--args", str(fds[-1]), "--", *python]  # the command cannot be among the --args
        if cgroup_procs is not None:
            argv = [_SHELL, "-c", 'echo $$ > "$0" && exec "$@"', str(cgroup_procs), *argv]
        return Launch(argv, tuple(fds))

    def working_directory(self, data_dir: Path) -> Path:
        """Where the process starts on the host: the unsafe kernel works in its data dir, as today's cells did."""
        return data_dir if self.mode is Mode.UNSAFE else Path("/")


def _memory_file(name: str, content: bytes) -> int:
    """A descriptor of an unlinked in-memory file holding `content`, read from its start."""
    fd = os.memfd_create(name, 0)
    os.write(fd, content)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


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
    with tempfile.TemporaryDirectory(prefix="emulator-sandbox-probe-") as empty:
        launch = launcher.launch(None, Path(empty), _PROBE_UID)
        try:
            done = subprocess.run(launch.argv, env=ENVIRONMENT, capture_output=True, timeout=30, check=False,
                                  pass_fds=launch.fds)
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"bubblewrap could not start a process: {error}"
        finally:
            launch.close()
    if done.stdout.strip() != b"ok":
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
        return f"bubblewrap could not start a process here: {detail[-1] if detail else f'exit {done.returncode}'}"
    return None


_PROBE_UID = 1_499_999_999
