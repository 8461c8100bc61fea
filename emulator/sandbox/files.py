"""Files in and out of a session's /mnt/data, without trusting what the cell left there.

A cell (or a process it started) may have put symlinks, fifos or directories where the server reads and
writes: every access here is relative to a directory descriptor and refuses to follow a link
(`os.fwalk`, `O_NOFOLLOW`), and only regular files are read.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from pathlib import Path

_NAME_BYTES = 255
_COPY_CHUNK = 1 << 20


def safe_name(name: str) -> str:
    """A name that is one file name in /mnt/data: no NUL, no directory part, never `.` or `..` or empty."""
    cleaned = name.replace("\x00", "").replace("/", "_").replace("\\", "_").strip()
    while len(cleaned.encode("utf-8", "surrogatepass")) > _NAME_BYTES:
        cleaned = cleaned[:-1]
    cleaned = cleaned.encode("utf-8", "replace").decode("utf-8")
    return "file" if cleaned in ("", ".", "..") else cleaned


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


Snapshot = dict[str, tuple[int, int]]


def snapshot(directory: Path) -> Snapshot:
    """Every regular file under `directory` (relative path: size, mtime), links never followed."""
    found: Snapshot = {}
    if not directory.is_dir():
        return found
    for folder, _dirs, names, folder_fd in os.fwalk(directory, follow_symlinks=False):
        for name in names:
            try:
                info = os.stat(name, dir_fd=folder_fd, follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode):
                found[os.path.relpath(os.path.join(folder, name), directory)] = (info.st_size, info.st_mtime_ns)
    return found


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
