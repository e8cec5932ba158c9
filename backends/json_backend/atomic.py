"""Durable file primitives: fsync'd writes, atomic replacement, directory fsync.

A reader never sees a torn file: every file is written whole under a
temporary name in its own directory, flushed and fsync'd, then renamed over
the target with :func:`os.replace` (atomic on POSIX and Windows), and the
directory is fsync'd so the rename itself survives a crash.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import suppress
from pathlib import Path

#: Suffix of every temporary file this backend writes (``check`` reports leftovers).
TEMP_SUFFIX = ".tmp"


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (creations, renames, unlinks) durable; no-op where unsupported."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    try:
        fd = os.open(path, flags)
    except OSError:  # e.g. Windows cannot open a directory
        return
    try:
        with suppress(OSError):  # some filesystems refuse fsync on directories
            os.fsync(fd)
    finally:
        os.close(fd)


def write_fsync(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (created or truncated) and fsync it."""
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically and durably."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o644)  # mkstemp makes 0600; match the files open() writes
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def make_dirs(path: Path) -> None:
    """Create ``path`` and missing parents, fsyncing each new directory's parent."""
    missing: list[Path] = []
    current = path
    while not current.is_dir():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        with suppress(FileExistsError):
            directory.mkdir()
        fsync_dir(directory.parent)


def remove_empty_dirs(start: Path, stop: Path) -> None:
    """Remove ``start`` and its parents while they are empty, never ``stop`` or above it."""
    current = start
    while current != stop and stop in current.parents:
        try:
            current.rmdir()
        except OSError:  # not empty (or gone): stop climbing
            return
        fsync_dir(current.parent)
        current = current.parent
