"""Catalog backends: ``none`` records hashes only; ``file`` (any fsspec URL) keeps copies.

Paths given to get/put are globs relative to the working directory. A pattern or a match
that leaves the working directory (``..``, an absolute path, a symlink out) is refused.
Copies are written to a temporary name first and then moved into place, so a reader never
sees half a file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from conveyor.jsontypes import JSONObject

CHUNK = 1024 * 1024
#: What follows a log's key in the names of its parts (:meth:`SharedStore.append_shared`).
PARTS = ".parts/"


class PathEscapeError(ValueError):
    """A catalog pattern or match points outside the working directory."""


@dataclass(frozen=True)
class CatalogEntry:
    """One file or object in the catalog: its name, size and sha256, and where it is kept."""

    name: str
    size: int
    sha256: str
    location: str | None

    def to_dict(self) -> JSONObject:
        """The entry as a step's record keeps it (the attempt's ``catalog`` list)."""
        return asdict(self)


def _check_pattern(pattern: str) -> None:
    parts = Path(pattern.replace("\\", "/")).parts
    if os.path.isabs(pattern) or pattern.startswith("~") or ".." in parts:
        raise PathEscapeError(
            f"catalog pattern {pattern!r} escapes the working directory; "
            "use a path relative to it, without '..'"
        )


def _local_matches(workdir: Path, pattern: str) -> list[Path]:
    _check_pattern(pattern)
    root = workdir.resolve()
    out = []
    for match in sorted(root.glob(pattern)):
        if not match.is_file():
            continue
        if not match.resolve().is_relative_to(root):
            raise PathEscapeError(f"{match} (from {pattern!r}) resolves outside {root}")
        out.append(match)
    return out


def _inside(workdir: Path, name: str) -> Path:
    """Where ``name`` goes under ``workdir``; PathEscapeError if a link on the way (a
    symlinked directory) leads out of it. Checked before anything is created."""
    root = workdir.resolve()
    local = workdir / name
    existing = local.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.resolve().is_relative_to(root) or (
        local.is_symlink() and not local.resolve().is_relative_to(root)
    ):
        raise PathEscapeError(f"catalog file {name!r} would be written through a link that leaves {root}")
    return local


def _hash_file(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


class RunArtifacts(ABC):
    """A run's artifacts: files and blobs keyed by run id, then by path relative to the
    workdir. What a step's ``catalog: get/put`` and its object returns need."""

    #: Whether files are copied in and out (a pattern matching nothing is then worth a word).
    keeps_copies: bool = True

    @abstractmethod
    def put(self, run_id: str, patterns: list[str], workdir: Path) -> list[CatalogEntry]:
        """Store the files matching ``patterns``; return an entry for each."""

    @abstractmethod
    def get(self, run_id: str, patterns: list[str], workdir: Path) -> list[CatalogEntry]:
        """Copy the run's artifacts matching ``patterns`` into ``workdir``."""

    @abstractmethod
    def put_bytes(self, run_id: str, name: str, data: bytes) -> CatalogEntry:
        """Store one blob (a pickled object return, an executed notebook)."""

    @abstractmethod
    def get_bytes(self, location: str) -> bytes:
        """Read back a blob stored by :meth:`put_bytes`."""


class SharedStore(ABC):
    """Blobs kept outside any run, for later runs to read: the step cache's entries and
    incremental maps' ledgers. Apart from :class:`RunArtifacts` so that what only needs
    these (``step.cache``, ``step.partitions``' ledger) says so in its types."""

    @abstractmethod
    def shared(self, prefix: str) -> dict[str, bytes]:
        """Every blob kept outside any run under ``prefix`` (incremental ledgers), by key."""

    @abstractmethod
    def put_shared(self, key: str, data: bytes) -> None:
        """Keep a blob outside any run, for later runs to read (atomically: a reader sees
        the old blob or the new one, never part of one)."""

    @abstractmethod
    def get_shared(self, key: str) -> bytes | None:
        """One blob kept by :meth:`put_shared`, or None if there is none."""

    @abstractmethod
    def delete_shared(self, key: str) -> None:
        """Forget a blob kept by :meth:`put_shared` (nothing if there is none)."""

    def append_shared(self, key: str, data: bytes) -> None:
        """Add whole lines to the log ``key``, which several processes may append to at once
        (the step cache keeps a step's entries so: one log, not one blob per map item).

        Here each append is a part of its own (``KEY.parts/TIME-RANDOM``), written whole:
        any store can do that and writers never clash. A local directory appends to one file
        instead (:class:`FsspecCatalog`)."""
        self.put_shared(f"{key}{PARTS}{time.time_ns():020d}-{os.urandom(6).hex()}", data)

    def read_appended(self, key: str) -> bytes:
        """Everything appended to ``key`` so far (what :meth:`put_shared` left there first,
        then the parts in the order they were written). A last line without its newline is
        one being written or torn by a crash: callers skip it."""
        parts = self.shared(key + PARTS)
        base = self.get_shared(key) or b""
        if base and not base.endswith(b"\n"):
            base += b"\n"  # a torn line does not swallow the next part's first line
        return base + b"".join(parts[k] for k in sorted(parts))

    def replace_appended(self, key: str, data: bytes) -> None:
        """Replace the log ``key`` with ``data`` (``cache clear``: the entries kept); an
        empty ``data`` removes it. Appends made meanwhile by another process may be lost."""
        for part in self.shared(key + PARTS):
            self.delete_shared(part)
        if data:
            self.put_shared(key, data)
        else:
            self.delete_shared(key)


class Catalog(RunArtifacts, SharedStore):
    """A catalog backend: a run's artifacts and the shared store, on the same storage (the
    ``catalog:`` of a run config). Every backend is both; a caller asks for the half it uses."""


class InProcessCatalog(Catalog):
    """The ``none`` catalog: keeps no copies of files (they stay where steps wrote them;
    entries carry their size and hash), and holds object returns in this process's memory,
    so a run of the embedded default leaves nothing on disk."""

    keeps_copies = False

    def __init__(self, **config: Any) -> None:
        if config:
            raise ValueError(f"catalog 'none' takes no config, found {sorted(config)}")
        self._blobs: dict[str, bytes] = {}
        self._shared: dict[str, bytes] = {}
        self._appending = threading.Lock()

    def put(self, run_id: str, patterns: list[str], workdir: Path) -> list[CatalogEntry]:
        entries = []
        for pattern in patterns:
            for match in _local_matches(workdir, pattern):
                size, digest = _hash_file(match)
                name = match.resolve().relative_to(workdir.resolve()).as_posix()
                entries.append(CatalogEntry(name, size, digest, None))
        return entries

    def get(self, run_id: str, patterns: list[str], workdir: Path) -> list[CatalogEntry]:
        for pattern in patterns:
            _check_pattern(pattern)
        return []

    def put_bytes(self, run_id: str, name: str, data: bytes) -> CatalogEntry:
        location = f"memory://{run_id}/{name}"
        self._blobs[location] = data
        return CatalogEntry(name, len(data), hashlib.sha256(data).hexdigest(), location)

    def shared(self, prefix: str) -> dict[str, bytes]:
        return {k: v for k, v in self._shared.items() if k.startswith(prefix)}

    def put_shared(self, key: str, data: bytes) -> None:
        self._shared[key] = data

    def get_shared(self, key: str) -> bytes | None:
        return self._shared.get(key)

    def delete_shared(self, key: str) -> None:
        self._shared.pop(key, None)

    def append_shared(self, key: str, data: bytes) -> None:
        with self._appending:
            self._shared[key] = self._shared.get(key, b"") + data

    def get_bytes(self, location: str) -> bytes:
        try:
            return self._blobs[location]
        except KeyError:
            raise FileNotFoundError(
                f"{location} is gone: with catalog 'none', objects live only in the process "
                "that made them; configure a catalog to keep them"
            ) from None


class FsspecCatalog(Catalog):
    """Copies on any fsspec file system: a local directory, s3://..., memory://..."""

    def __init__(
        self, location: str = ".conveyor/catalog", storage_options: Mapping[str, object] | None = None
    ) -> None:
        self._fs: Any = None
        plain = location.removeprefix("file://")
        if "://" not in plain and "::" not in plain and not storage_options:
            # A local directory (the default catalog): fsspec is imported when first used,
            # so a run that copies nothing does not pay for it.
            self.local, root = True, os.path.abspath(os.path.expanduser(plain))
        else:
            import fsspec.core

            self._fs, root = fsspec.core.url_to_fs(location, **(storage_options or {}))
            protocols = self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
            #: A local directory: small reads go straight to the file (a cache lookup per step).
            self.local = "file" in protocols
            if self.local:
                root = os.path.abspath(root)
        self.root = root.rstrip("/")
        #: Local logs open for appending, by path (closed with the catalog).
        self._logs: dict[str, int] = {}
        self._logs_lock = threading.Lock()
        weakref.finalize(self, _close_all, self._logs)

    @property
    def fs(self) -> Any:
        """The fsspec file system the copies are on (a local directory's, made when first used)."""
        if self._fs is None:
            from fsspec.implementations.local import LocalFileSystem

            self._fs = LocalFileSystem()
        return self._fs

    def _url(self, run_id: str, name: str) -> str:
        return f"{self.root}/{run_id}/{name}"

    def _write(self, local: Path | None, data: bytes | None, target: str) -> None:
        parent = target.rsplit("/", 1)[0]
        self.fs.makedirs(parent, exist_ok=True)
        tmp = f"{parent}/.tmp-{os.urandom(16).hex()}"
        if local is not None:
            self.fs.put_file(str(local), tmp)
        else:
            self.fs.pipe_file(tmp, data or b"")
        self.fs.mv(tmp, target)

    def put(self, run_id: str, patterns: list[str], workdir: Path) -> list[CatalogEntry]:
        entries = []
        root = workdir.resolve()
        for pattern in patterns:
            for match in _local_matches(workdir, pattern):
                name = match.resolve().relative_to(root).as_posix()
                size, digest = _hash_file(match)
                target = self._url(run_id, name)
                self._write(match, None, target)
                entries.append(CatalogEntry(name, size, digest, self.fs.unstrip_protocol(target)))
        return entries

    def get(self, run_id: str, patterns: list[str], workdir: Path) -> list[CatalogEntry]:
        entries = []
        base = self._url(run_id, "")
        for pattern in patterns:
            _check_pattern(pattern)
            for found in sorted(self.fs.glob(base + pattern)):
                name = found[len(base) :] if found.startswith(base) else found.rsplit("/", 1)[-1]
                if "/.objects/" in f"/{name}" or name.startswith(".objects/"):
                    continue
                local = _inside(workdir, name)
                local.parent.mkdir(parents=True, exist_ok=True)
                tmp = local.with_name(f".{local.name}.{os.urandom(16).hex()}.tmp")
                self.fs.get_file(found, str(tmp))
                os.replace(tmp, local)
                size, digest = _hash_file(local)
                entries.append(CatalogEntry(name, size, digest, self.fs.unstrip_protocol(found)))
        return entries

    def put_bytes(self, run_id: str, name: str, data: bytes) -> CatalogEntry:
        target = self._url(run_id, f".objects/{name}")
        self._write(None, data, target)
        digest = hashlib.sha256(data).hexdigest()
        return CatalogEntry(name, len(data), digest, self.fs.unstrip_protocol(target))

    def get_bytes(self, location: str) -> bytes:
        data: bytes = self.fs.cat_file(location)
        return data

    def _shared_url(self, key: str) -> str:
        return f"{self.root}/_shared/{key}"

    def put_shared(self, key: str, data: bytes) -> None:
        self._write(None, data, self._shared_url(key))

    def get_shared(self, key: str) -> bytes | None:
        try:
            if self.local:
                with open(self._shared_url(key), "rb") as handle:
                    return handle.read()
            data: bytes = self.fs.cat_file(self._shared_url(key))
        except FileNotFoundError:
            return None
        return data

    def delete_shared(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self._shared_url(key))

    def append_shared(self, key: str, data: bytes) -> None:
        if not self.local:
            super().append_shared(key, data)
            return
        path = self._shared_url(key)
        with self._logs_lock:
            fd = self._logs.get(path)
            if fd is None:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                fd = self._logs[path] = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
                # A crash mid-write left a torn last line: start on a fresh one.
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    os.write(fd, b"\n")
            # One write() on an O_APPEND descriptor: lines of several processes appending to
            # the same log never interleave on a local file system.
            written = os.write(fd, data)
            while written < len(data):
                written += os.write(fd, data[written:])

    def read_appended(self, key: str) -> bytes:
        if not self.local:
            return super().read_appended(key)
        try:
            with open(self._shared_url(key), "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            return b""

    def replace_appended(self, key: str, data: bytes) -> None:
        with self._logs_lock:  # this process's later appends go to the new file
            for fd in self._logs.values():
                os.close(fd)
            self._logs.clear()
        super().replace_appended(key, data)

    def shared(self, prefix: str) -> dict[str, bytes]:
        base = self._shared_url("")
        try:
            found = self.fs.find(self._shared_url(prefix.rsplit("/", 1)[0]) if "/" in prefix else base)
        except FileNotFoundError:
            return {}
        paths = [
            f for f in found if f.startswith(base) and "/.tmp-" not in f and f[len(base) :].startswith(prefix)
        ]
        if not paths:
            return {}
        blobs = self.fs.cat(paths)  # keyed by path, in whatever order the reads finished
        return {path[len(base) :]: bytes(blobs[path]) for path in paths}


def _close_all(fds: dict[str, int]) -> None:
    for fd in fds.values():
        with contextlib.suppress(OSError):
            os.close(fd)
    fds.clear()


class RecordOnlyPuts(Catalog):
    """``inner`` with files put recorded (name, size, sha256), not copied: runnable's
    ``Catalog(store_copy=False)`` for a job, whose files nothing reads back from the catalog
    (large outputs stay where the job wrote them, and the run log still says what they were).
    Blobs (object returns, executed notebooks) and gets still go to ``inner``."""

    def __init__(self, inner: Catalog) -> None:
        self.inner = inner
        self.keeps_copies = inner.keeps_copies

    def put(self, run_id: str, patterns: list[str], workdir: Path) -> list[CatalogEntry]:
        root = workdir.resolve()
        entries = []
        for pattern in patterns:
            for match in _local_matches(workdir, pattern):
                size, digest = _hash_file(match)
                entries.append(CatalogEntry(match.resolve().relative_to(root).as_posix(), size, digest, None))
        return entries

    def get(self, run_id: str, patterns: list[str], workdir: Path) -> list[CatalogEntry]:
        return self.inner.get(run_id, patterns, workdir)

    def put_bytes(self, run_id: str, name: str, data: bytes) -> CatalogEntry:
        return self.inner.put_bytes(run_id, name, data)

    def get_bytes(self, location: str) -> bytes:
        return self.inner.get_bytes(location)

    def shared(self, prefix: str) -> dict[str, bytes]:
        return self.inner.shared(prefix)

    def put_shared(self, key: str, data: bytes) -> None:
        self.inner.put_shared(key, data)

    def get_shared(self, key: str) -> bytes | None:
        return self.inner.get_shared(key)

    def delete_shared(self, key: str) -> None:
        self.inner.delete_shared(key)

    def append_shared(self, key: str, data: bytes) -> None:
        self.inner.append_shared(key, data)

    def read_appended(self, key: str) -> bytes:
        return self.inner.read_appended(key)

    def replace_appended(self, key: str, data: bytes) -> None:
        self.inner.replace_appended(key, data)
