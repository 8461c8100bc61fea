"""The code_interpreter sandbox: sessions (a kernel per thread) in Linux namespaces (`isolation`).

The server installs one `Sandbox` at start (`install`), which the run executor reaches through `installed`:
sessions belong to the server process, like its kernels.
"""

from __future__ import annotations

import logging
from pathlib import Path

from emulator import processes
from emulator.sandbox.files import remove_tree
from emulator.sandbox.isolation import Launcher, Mode, choose
from emulator.sandbox.kernel import SandboxError
from emulator.sandbox.sessions import Execution, InputFile, Sandbox

__all__ = [
    "Execution", "InputFile", "Launcher", "Mode", "Sandbox", "SandboxError", "end_session", "install", "installed",
]

log = logging.getLogger("emulator.sandbox")

_installed: Sandbox | None = None

UNSAFE_WARNING = (
    "UNSAFE CODE EXECUTION: code_interpreter cells run as plain subprocesses with this server's rights, its "
    "network and its files (--unsafe-code-execution). Anyone who can reach this port can run code on this machine."
)


def install(root: Path, *, unsafe: bool, timeout_seconds: int) -> Sandbox:
    """Choose the launcher for this machine, say which at start, and make the server's sandbox."""
    global _installed
    launcher = choose(unsafe=unsafe)
    if launcher.mode is Mode.UNSAFE:
        log.warning(UNSAFE_WARNING)
        print(f"  WARNING: {UNSAFE_WARNING}", flush=True)
    elif launcher.mode is Mode.UNAVAILABLE:
        message = (f"code_interpreter is disabled: {launcher.reason}. Runs that call it fail; start with "
                   "--unsafe-code-execution to run cells without isolation (unsafe).")
        log.warning(message)
        print(f"  WARNING: {message}", flush=True)
    _installed = Sandbox(launcher, _process_directory(root), timeout_seconds)
    return _installed


def _process_directory(root: Path) -> Path:
    """This process's own directory under `root`: replicas may share the data dir. Directories left by earlier
    processes that are gone (their sessions died with them) are removed (`processes.is_gone`)."""
    for earlier in root.glob("proc-*"):
        identity = processes.from_directory_name(earlier.name)
        if identity is not None and processes.is_gone(identity):
            remove_tree(earlier)
    mine = root / processes.directory_name(processes.THIS_PROCESS)
    remove_tree(mine)
    mine.mkdir(parents=True)
    return mine


def installed() -> Sandbox:
    if _installed is None:
        raise SandboxError("the code_interpreter sandbox is not set up in this process")
    return _installed


def end_session(thread_id: str) -> None:
    """The thread is gone: so is its code_interpreter session (if this process has one)."""
    if _installed is not None:
        _installed.end(thread_id)


def uninstall() -> None:
    global _installed
    if _installed is not None:
        _installed.close()
        _installed = None
