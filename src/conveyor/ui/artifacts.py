"""A run's catalog files as the UI lists and reads them: per step and attempt, from the run
log's catalog records, and read only from the run's own folder of its file catalog.

No path from a request reaches the file system. A request names a step, an attempt and an
entry's name; the name must be one that attempt recorded, and the file read is
``<catalog>/<run id>/<name>`` (or under ``.objects/`` for a blob such as an executed
notebook), where ``<catalog>`` is the source's own idea of the run's catalog, never a
location the run recorded (a run record anyone could have edited): on the server the user's
catalog folder, for ``conveyor ui`` the catalog of the config it was started with. The
name is refused if it is absolute or has a ``..`` segment; the file is opened one folder at
a time with no link followed (``conveyor.beneath``: a link planted or swapped in by a step,
even mid-request, leads nowhere), and only a regular file is read (a FIFO would block).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from conveyor.beneath import NotBeneath, open_beneath
from conveyor.runlog.records import StepRecord, check_run_id
from conveyor.ui.failures import item_records

if TYPE_CHECKING:
    from conveyor.ui.runpage import RunPage as RunView

#: The most entries the run's artifact list holds (a map of 100,000 items is listed per item).
LIST_LIMIT = 1000
#: Where a ``file`` catalog is when its config names no location (``FsspecCatalog``'s default).
DEFAULT = ".conveyor/catalog"


class Artifact(TypedDict):
    """A catalog entry of one attempt, as the Artifacts panel lists it."""

    step: str
    attempt: int
    name: str
    size: int | None
    sha256: str | None
    #: Whether a copy was kept (a record-only or ``none`` catalog keeps names and hashes only).
    kept: bool


class ArtifactList(TypedDict):
    """A run's artifacts (or one step's), and how many more there are past the limit."""

    artifacts: list[Artifact]
    more: int


class Refused(Exception):
    """An artifact the UI will not read: ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def catalog_folder(catalog: object, workdir: str | None) -> Path | None:
    """Where a ``file`` catalog is on this machine, from a config's ``catalog`` section (a
    relative location against ``workdir``); None for another kind of catalog, or object
    storage (not read by the UI)."""
    if not isinstance(catalog, dict) or catalog.get("type", "file") != "file":
        return None
    options = catalog.get("config")
    location = options.get("location", DEFAULT) if isinstance(options, dict) else DEFAULT
    if not isinstance(location, str) or "\x00" in location:
        return None
    plain = location.removeprefix("file://")
    if "://" in plain or "::" in plain:
        return None
    path = Path(plain).expanduser()
    if not path.is_absolute():
        if not workdir or not os.path.isabs(workdir):
            return None
        path = Path(workdir) / path
    return path


def _entries(record: StepRecord) -> list[Artifact]:
    out: list[Artifact] = []
    for attempt in record.attempts:
        for entry in attempt.catalog:
            name, size, digest = entry.get("name"), entry.get("size"), entry.get("sha256")
            if not isinstance(name, str):
                continue
            out.append(
                {
                    "step": "/".join(record.path),
                    "attempt": attempt.attempt,
                    "name": name,
                    "size": size if isinstance(size, int) and not isinstance(size, bool) else None,
                    "sha256": digest if isinstance(digest, str) else None,
                    "kept": isinstance(entry.get("location"), str),
                }
            )
    return out


def step_record(view: RunView, key: tuple[str, ...]) -> StepRecord | None:
    """A step's whole record, a map item's step included (read from the run log on demand)."""
    with view.lock:
        record = view.steps.get(key)
        in_items = key in view.items
        item = view.item_of(key) if in_items else None
    if record is not None or item is None:
        return record
    return item_records(view, tuple(item.split("/"))).get(key)


def listing(view: RunView, step: str | None) -> ArtifactList:
    """The artifacts of ``step`` (every attempt), or of every step outside map items."""
    if step:
        record = step_record(view, tuple(p for p in step.split("/") if p))
        found = _entries(record) if record is not None else []
    else:
        with view.lock:
            records = list(view.steps.values())
        found = [a for r in records for a in _entries(r)]
    return {"artifacts": found[:LIST_LIMIT], "more": max(0, len(found) - LIST_LIMIT)}


def entry(view: RunView, step: str, attempt: int, name: str) -> Mapping[str, object]:
    """The catalog entry ``name`` of that attempt, as recorded (Refused 404 if it has none)."""
    record = step_record(view, tuple(p for p in step.split("/") if p))
    if record is None:
        raise Refused(404, f"no step '{step}' in run '{view.run_id}'")
    for found in record.attempts:
        if found.attempt == attempt:
            for item in found.catalog:
                if item.get("name") == name:
                    return item
            raise Refused(404, f"attempt {attempt} of step '{step}' put no file named {name!r}")
    raise Refused(404, f"step '{step}' has no attempt {attempt}")


def _checked_name(name: str) -> str:
    parts = name.split("/")
    if (
        not name
        or "\x00" in name
        or "\\" in name
        or name.startswith("/")
        or any(p in ("", ".", "..") for p in parts)
    ):
        raise Refused(403, f"catalog name {name!r} is not a plain relative path: it is not read")
    return name


def open_artifact(catalog: Path | None, run_id: str, item: Mapping[str, object]) -> tuple[int, int]:
    """A read-only descriptor of an entry's kept copy, and its size (see the module's
    docstring for what is refused). The caller closes the descriptor."""
    name = _checked_name(str(item.get("name")))
    location = item.get("location")
    if catalog is None or not isinstance(location, str):
        raise Refused(404, f"no copy of {name!r} is kept where this UI can read it")
    blob = location.endswith(f"/.objects/{name}")  # an executed notebook, kept as a blob
    parts = [check_run_id(run_id), *([".objects"] if blob else []), *name.split("/")]
    try:
        fd = open_beneath(catalog, parts)
    except FileNotFoundError:
        raise Refused(404, f"{name!r} is not in the catalog (any more)") from None
    except NotBeneath:
        raise Refused(
            403, f"{name!r} is not a regular file in the run's catalog folder: it is not read"
        ) from None
    except OSError as exc:  # ELOOP: a link on the way (planted by a step), never followed
        raise Refused(403, f"{name!r} cannot be read: {exc.strerror}") from None
    info = os.fstat(fd)
    return fd, info.st_size


def read_head(fd: int, limit: int) -> bytes:
    """At most ``limit`` bytes from the start of ``fd``."""
    chunks, left = [], limit
    while left > 0:
        chunk = os.pread(fd, min(left, 1024 * 1024), limit - left)
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)
