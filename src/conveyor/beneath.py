"""Open a file beneath a trusted folder, one name at a time, never through a link.

What a step writes (catalog files, logs) is read by the UI's process. Resolving a path and
then opening it leaves a race: a step that swaps a folder on the way for a link between the
check and the open makes the reader open any file it can (``/etc/passwd``); and a FIFO put
where a file was blocks the reader for ever. So each folder is opened relative to the one
before it with ``O_NOFOLLOW | O_DIRECTORY``, the file with ``O_NOFOLLOW | O_NONBLOCK``, and
only a regular file is returned.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


class NotBeneath(OSError):
    """The path has a name that leaves its folder (``..``, empty, absolute), or leads to
    something that is not a regular file (a FIFO, a device, a folder)."""


def open_beneath(root: Path | str, parts: Sequence[str]) -> int:
    """A read-only descriptor of the regular file ``root/parts[0]/.../parts[-1]``, with no
    link followed after ``root`` (the caller's own, trusted folder). Raises
    FileNotFoundError, :class:`NotBeneath`, or the OSError of the open (ELOOP for a link).
    The caller closes the descriptor."""
    if not parts or any(p in ("", ".", "..") or "/" in p or "\x00" in p for p in parts):
        raise NotBeneath(f"{'/'.join(parts)!r} is not a plain relative path")
    folder = os.open(root, os.O_RDONLY | _DIRECTORY | _CLOEXEC)
    try:
        for part in parts[:-1]:
            inner = os.open(part, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC, dir_fd=folder)
            os.close(folder)
            folder = inner
        fd = os.open(parts[-1], os.O_RDONLY | _NOFOLLOW | _NONBLOCK | _CLOEXEC, dir_fd=folder)
    finally:
        os.close(folder)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise NotBeneath(f"{'/'.join(parts)!r} is not a regular file")
    return fd


def parts_beneath(root: Path, location: str) -> list[str] | None:
    """The names of ``location`` below ``root``, compared as written (no link resolved: the
    open checks those), or None if it is not an absolute path below ``root``."""
    if "\x00" in location or not os.path.isabs(location):
        return None
    path = Path(location)
    if ".." in path.parts:
        return None
    try:
        return list(path.relative_to(root).parts)
    except ValueError:
        return None
