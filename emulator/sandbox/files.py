"""Files in and out of a session's /mnt/data, without trusting what the cell left there.

A cell (or a process it started) may have put symlinks, fifos or directories where the server reads and
writes: every access here is relative to a directory descriptor and refuses to follow a link
(`os.fwalk`, `O_NOFOLLOW`), and only regular files are read.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import stat
import subprocess
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("emulator.sandbox")

_NAME_BYTES = 255
_COPY_CHUNK = 1 << 20
MAX_DEPTH = 64
"""Directory levels of /mnt/data the server looks into (a cell may nest thousands)."""
MAX_ENTRIES = 20_000
"""Directory entries of /mnt/data the server looks at after a cell."""
_REMOVE_SECONDS = 300


def safe_name(name: str) -> str:
    """A name that is one file name in /mnt/data: no NUL, no directory part, never `.` or `..` or empty."""
    cleaned = "".join(_printable(character) for character in name.replace("\x00", ""))
    cleaned = cleaned.replace("/", "_").replace("\\", "_").strip()
    while len(cleaned.encode("utf-8", "surrogatepass")) > _NAME_BYTES:
        cleaned = cleaned[:-1]
    cleaned = cleaned.encode("utf-8", "replace").decode("utf-8")
    return "file" if cleaned in ("", ".", "..") else cleaned


def _printable(character: str) -> str:
    """Control and format characters (newlines, bidirectional overrides such as U+202E) become `_`."""
    return "_" if unicodedata.category(character) in ("Cc", "Cf", "Zl", "Zp") else character


def display_path(relative: str) -> str:
    """A path found under /mnt/data (any bytes), each of its parts a safe name: `sub/x.csv`."""
    return "/".join(safe_name(os.fsdecode(part)) for part in Path(relative).parts)


def remove_tree(path: Path) -> None:
    """Remove a directory tree a cell may have filled (thousands of levels, links): never raises. `rm` walks
    without recursion limits and stays on this file system."""
    if not os.path.lexists(path):
        return
    try:
        done = subprocess.run(["rm", "-rf", "--one-file-system", "--", str(path)], capture_output=True,
                              timeout=_REMOVE_SECONDS, check=False)
        if done.returncode != 0:
            log.warning("could not remove %s: %s", path, done.stderr.decode("utf-8", "replace").strip())
    except (OSError, subprocess.SubprocessError) as error:
        log.warning("could not remove %s: %s", path, error)


def disk_bytes(directory: Path, walked: Snapshot | None = None) -> int:
    """The bytes (by file size) of everything under `directory`, however deep or wide: `walked` when that walk
    saw it all, else `du`, which walks without the server's caps (the walk's total if `du` fails)."""
    if walked is not None and walked.complete:
        return walked.total_bytes
    try:
        done = subprocess.run(["du", "-s", "-x", "-b", "--", str(directory)], capture_output=True,
                              timeout=_REMOVE_SECONDS, check=False)
        return int(done.stdout.split()[0])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return (walked or snapshot(directory)).total_bytes


def place(directory: Path, name: str, source: Path, owner: int | None) -> None:
    """Copy `source` into `directory` as `name` (already safe), replacing whatever non-directory is there."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    top = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=top)
        target = os.open(name, flags, 0o644, dir_fd=top)
        with os.fdopen(target, "wb") as out, source.open("rb") as given:
            shutil.copyfileobj(given, out, _COPY_CHUNK)
            if owner is not None:
                os.fchown(out.fileno(), owner, owner)
    finally:
        os.close(top)


@dataclass
class Snapshot:
    """The regular files under a directory (relative path: size, mtime); `complete` is False when the walk
    stopped at `MAX_DEPTH` or `MAX_ENTRIES`."""

    files: dict[str, tuple[int, int]] = field(default_factory=dict)
    complete: bool = True

    @property
    def total_bytes(self) -> int:
        return sum(size for size, _ in self.files.values())


def snapshot(directory: Path) -> Snapshot:
    """Every regular file under `directory`, links never followed, walked without recursion and within caps."""
    found = Snapshot()
    if not directory.is_dir():
        return found
    pending: list[tuple[str, int]] = [("", 0)]
    seen = 0
    while pending:
        relative, depth = pending.pop()
        fd = _open_directory(directory, relative)
        if fd is None:
            continue
        try:
            with os.scandir(fd) as entries:
                for entry in entries:
                    seen += 1
                    if seen > MAX_ENTRIES:
                        found.complete = False
                        return found
                    path = os.path.join(relative, entry.name)
                    try:
                        info = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    if stat.S_ISREG(info.st_mode):
                        found.files[path] = (info.st_size, info.st_mtime_ns)
                    elif stat.S_ISDIR(info.st_mode):
                        if depth + 1 >= MAX_DEPTH:
                            found.complete = False
                        else:
                            pending.append((path, depth + 1))
        except OSError:
            continue
        finally:
            os.close(fd)
    return found


def _open_directory(directory: Path, relative: str) -> int | None:
    """A descriptor of `relative` under `directory`, no link followed on the way; None if it is none."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return None
    for part in Path(relative).parts:
        try:
            inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
        except OSError:
            os.close(fd)
            return None
        os.close(fd)
        fd = inner
    return fd


def copy_out(directory: Path, relative: str, target: Path, max_bytes: int) -> bool:
    """Copy the regular file `relative` of `directory` to `target`; False if it is not one (any more)."""
    parts = Path(relative).parts
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        for part in parts[:-1]:
            inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = inner
        source = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
    except OSError:
        os.close(fd)
        return False
    os.close(fd)
    with os.fdopen(source, "rb") as given:
        info = os.fstat(given.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > max_bytes:
            return False
        with target.open("wb") as out:
            shutil.copyfileobj(given, out, _COPY_CHUNK)
    return True
