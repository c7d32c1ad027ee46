"""Where the UI reads an attempt's log: only from the run's own log folder.

The ``log`` field of an attempt is written by whatever recorded the run (on a laptop, a run
log anyone with write access to the folder may have edited). Followed as it is, a log link
would show any file the UI's process can read (``/etc/passwd``, another run's logs, a
symlink planted in the run's folder). So a recorded location is used only when it is inside
the run's own log folder, and it is opened one folder at a time with no link followed and
only if it is a regular file (``conveyor.beneath``); anything else is read from where the
store itself keeps that attempt's log.
"""

from __future__ import annotations

import os
from pathlib import Path

from conveyor.beneath import NotBeneath, open_beneath
from conveyor.runlog.base import RunLogStore
from conveyor.runlog.file import FileRunLogStore


def _root(store: RunLogStore) -> Path | None:
    """A file store's folder (where its logs are: :meth:`FileRunLogStore.log_parts`); None
    for another store."""
    return store.root if isinstance(store, FileRunLogStore) else None


def confined(store: RunLogStore, run_id: str, location: str) -> str | None:
    """``location`` as the place to read, if it is one of the run's own logs; else None.

    A file store's location must name a file below the run's ``logs`` folder, as written (no
    ``..``; links are refused when it is opened, :func:`open_log`); another store's must
    start with the run's own prefix and hold no ``..`` segment (its ``read_log`` looks a key
    up, and the key must be this run's)."""
    if "\x00" in location:
        return None
    if _root(store) is not None:
        return location if _file_parts(store, run_id, location) is not None else None
    prefix = store.log_location(run_id, "")
    rest = location[len(prefix) :]
    if not location.startswith(prefix) or ".." in rest.split("/"):
        return None
    return location


def attempt_location(store: RunLogStore, run_id: str, recorded: str | None, name: str) -> str:
    """Where to read an attempt's log: ``recorded`` when it is the run's own, else where the
    store keeps ``name`` (``step/attempt-N.log``) for this run (a moved or edited run log
    then shows the attempt's own log, or none, never another file)."""
    if recorded:
        found = confined(store, run_id, recorded)
        if found is not None:
            return found
    own = store.log_location(run_id, name)
    return confined(store, run_id, own) or own


def is_file_log(store: RunLogStore, run_id: str, location: str) -> bool:
    """Whether ``location`` (from :func:`attempt_location`) is a file to read from an offset."""
    return _root(store) is not None and os.path.isabs(location)


def _file_parts(store: RunLogStore, run_id: str, location: str) -> list[str] | None:
    """The names of a file store's log of ``run_id`` below the store's root, or None."""
    return store.log_parts(location, run_id) if isinstance(store, FileRunLogStore) else None


def open_log(store: RunLogStore, run_id: str, location: str) -> int:
    """A read-only descriptor of a confined log file, opened one folder at a time with no
    link followed and only if it is a regular file (``conveyor.beneath``)."""
    parts, root = _file_parts(store, run_id, location), _root(store)
    if parts is None or root is None:
        raise NotBeneath(f"{location!r} is not one of run {run_id}'s logs")
    return open_beneath(root, parts)
