"""A directory per run: ``run.json`` (atomic replace), ``events.jsonl`` (append), ``logs/``.

Each batch of events is written with a single ``write`` and flushed, so a run killed with
SIGKILL loses nothing that was recorded; a line cut short by a crash mid-write is skipped
when reading, and the next writer starts on a fresh line so it cannot swallow what follows.

Taking a run over is ``claims/N.json`` made with ``link`` (which, unlike ``rename``, never
replaces): of any number of takers expecting generation N-1, one makes it. A driver holding
generation N checks that ``claims/N+1.json`` does not exist before each write, under a shared
``flock`` of ``events.jsonl`` that a claim takes exclusively: no write of a taken-over driver
lands after the claim.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from conveyor.beneath import open_beneath, parts_beneath
from conveyor.runlog.base import (
    Durability,
    RunExistsError,
    RunLog,
    RunLogBusyError,
    RunLogStore,
    RunNotFoundError,
    RunTakenOverError,
)
from conveyor.runlog.codec import (
    decode_run,
    decode_run_of,
    encode_events,
    encode_run,
    fold_lines,
    unreadable,
)
from conveyor.runlog.records import Event, RunRecord, check_run_id

CLAIMS = "claims"
#: A claim waiting for the run's log marks it so (in the claims folder).
WANTED = ".wanted"
#: Seconds a claim waits for the run's fenced writes to let go of its log (a driver that
#: keeps its fence lets go within milliseconds, unless it is stopped: ``kill -STOP``, Ctrl-Z).
CLAIM_PATIENCE = 30.0


def _exclusive(fd: int) -> bool:
    """Take the exclusive lock of a run's log (no fenced write under way), waiting up to
    :data:`CLAIM_PATIENCE`; False if it could not be had."""
    deadline = time.monotonic() + CLAIM_PATIENCE
    pause = 0.001
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(pause)
            pause = min(pause * 2, 0.05)


def atomic_write(path: Path, text: str) -> None:
    """Write a temporary file beside ``path`` and rename it over: readers see old or new."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


class FileStoreConfig(BaseModel):
    """The ``file`` store's settings, checked before anything starts (``conveyor validate``
    too): a wrong ``durability`` is reported with its place in the config, like any key."""

    model_config = ConfigDict(extra="forbid")

    path: str = ".conveyor/runs"
    storage_options: dict[str, object] | None = None
    durability: Durability = "batched"


def file_store(
    path: str = ".conveyor/runs",
    storage_options: Mapping[str, object] | None = None,
    durability: str = "batched",
) -> RunLogStore:
    """The ``file`` run log store: a local directory, or (for a URL such as
    ``s3://bucket/runs``) the same layout in object storage. ``durability`` says when a
    run's events are safe (:data:`conveyor.runlog.base.DURABILITIES`)."""
    settings = FileStoreConfig.model_validate(
        {"path": path, "storage_options": storage_options, "durability": durability}
    )
    store: RunLogStore
    if "://" in path and not path.startswith("file://"):
        from conveyor.runlog.objects import ObjectRunLogStore

        store = ObjectRunLogStore(path, storage_options)
    else:
        store = FileRunLogStore(path)
    store.durability = settings.durability
    return store


#: What the registry validates a ``file`` config against without building the store.
file_store.config_model = FileStoreConfig  # type: ignore[attr-defined]


def _at(run: RunRecord, generation: int) -> RunRecord:
    """A copy of ``run`` at ``generation`` (the caller's record changes only if it wins)."""
    return dataclasses.replace(run, generation=generation)


class FileRunLogStore(RunLogStore):
    """Runs in a local directory (shared by pods through a volume, or on a laptop)."""

    takes_item_attempts = True

    def __init__(self, path: str = ".conveyor/runs") -> None:
        path = path.removeprefix("file://")
        self.root = Path(path).expanduser().absolute()
        self.where = str(self.root)
        self._fds: dict[str, int] = {}
        self._claims: dict[tuple[str, int], str] = {}
        self._lock = threading.Lock()
        #: What ``_held`` reads (``_hold`` writes it): the same dict, reached without a call.
        self._generations: dict[str, int] = vars(self).setdefault("_held_generations", {})
        #: Runs whose appends may keep their fence (the shared lock) until the next sync
        #: (:meth:`keep_fence`), and those that keep it now.
        self._lingering: set[str] = set()
        self._kept: set[str] = set()

    def _dir(self, run_id: str) -> Path:
        return self.root / check_run_id(run_id)

    def save_run(self, run: RunRecord, create: bool = False) -> None:
        directory = self._dir(run.run_id)
        if create:
            self.root.mkdir(parents=True, exist_ok=True)
            try:  # one mkdir wins, whatever the number of processes trying
                directory.mkdir()
            except FileExistsError:
                raise RunExistsError(run.run_id, self.where) from None
        else:
            directory.mkdir(parents=True, exist_ok=True)
        with self._lock, self._fenced(run.run_id, run.generation):
            atomic_write(directory / "run.json", encode_run(run, indent=1))
            self._hold(run.run_id, run.generation)

    @contextlib.contextmanager
    def _fenced(self, run_id: str, held: int | None) -> Iterator[None]:
        """Hold off claims (shared lock) while checking that no one claimed the run past
        ``held`` and writing. Called with ``self._lock`` held (one flock per descriptor)."""
        if held is None or run_id in self._kept:  # kept: no claim can be made meanwhile
            yield
            return
        fd = self._fd(run_id)  # its first open checked the run id
        fcntl.flock(fd, fcntl.LOCK_SH)
        try:
            if os.access(self._claim_path(run_id, held + 1), os.F_OK):
                raise RunTakenOverError(run_id, self.where, held, self._generation(run_id))
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def _claim_path(self, run_id: str, generation: int) -> str:
        """Where the claim of ``generation`` would be (built once: checked at every write)."""
        key = (run_id, generation)
        path = self._claims.get(key)
        if path is None:
            path = self._claims[key] = os.path.join(self.where, run_id, CLAIMS, f"{generation}.json")
        return path

    def _generation(self, run_id: str) -> int:
        """The newest claim's generation (0: never taken over)."""
        try:
            names = os.listdir(self._dir(run_id) / CLAIMS)
        except FileNotFoundError:
            return 0
        stems = [n[:-5] for n in names if n.endswith(".json")]
        return max((int(s) for s in stems if s.isascii() and s.isdigit()), default=0)

    def claim(self, run: RunRecord, expected_generation: int) -> bool:
        directory = self._dir(run.run_id)
        if not (directory / "run.json").exists():
            raise RunNotFoundError(run.run_id, self.where)
        (directory / CLAIMS).mkdir(exist_ok=True)
        claimed = directory / CLAIMS / f"{expected_generation + 1}.json"
        data = encode_run(_at(run, expected_generation + 1), indent=1)
        tmp = claimed.with_name(f".{claimed.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(data, encoding="utf-8")
        with self._lock:
            self._release(run.run_id)  # this instance's own fence would hold its claim off
        wanted = directory / CLAIMS / WANTED
        fd = -1
        try:
            wanted.touch()  # a driver keeping its fence sees it, and lets go after each write
            fd = os.open(directory / "events.jsonl", os.O_RDONLY | os.O_CREAT, 0o644)
            if not _exclusive(fd):  # a fenced write, or a driver keeping its fence, is under way
                raise RunLogBusyError(run.run_id, self.where, CLAIM_PATIENCE)
            if self._generation(run.run_id) != expected_generation:
                return False
            try:
                os.link(tmp, claimed)  # never replaces: of all takers, one links
            except FileExistsError:
                return False
            atomic_write(directory / "run.json", data)
        finally:
            if fd >= 0:
                os.close(fd)  # releases the lock
            tmp.unlink()
            with contextlib.suppress(FileNotFoundError):
                wanted.unlink()
        run.generation = expected_generation + 1
        self._hold(run.run_id, run.generation)
        return True

    def _open(self, run_id: str) -> int:
        path = self._dir(run_id) / "events.jsonl"
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        # A crash mid-write leaves a torn last line: start on a fresh one.
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            os.write(fd, b"\n")
        return fd

    def _fd(self, run_id: str) -> int:
        fd = self._fds.get(run_id)
        if fd is None:
            fd = self._fds[run_id] = self._open(run_id)
        return fd

    def keep_fence(self, run_id: str) -> None:
        """Appends of ``run_id`` keep its fence (the shared lock a claim waits for) until the
        next :meth:`sync`, instead of taking and checking it for each: the caller syncs
        within milliseconds of every append (the ``batched`` store writer). A map item's
        record then costs one system call, not four; a claim waits at most that long."""
        with self._lock:
            self._lingering.add(run_id)

    def _wanted(self, run_id: str) -> bool:
        """Whether a claim of ``run_id`` is waiting (its marker exists): a fence is then let
        go after each write, as without :meth:`keep_fence`, so that the claim gets in."""
        path = self._claims.get((run_id, -1))
        if path is None:
            path = self._claims[(run_id, -1)] = os.path.join(self.where, run_id, CLAIMS, WANTED)
        try:
            marked = os.stat(path).st_mtime
        except FileNotFoundError:
            return False
        except OSError:  # cannot tell: let go, as without keep_fence (never fails the write)
            return True
        # A claimer killed while it waited leaves its mark: one older than any wait is stale.
        return time.time() - marked < 2 * CLAIM_PATIENCE

    def _release(self, run_id: str) -> None:
        """Under ``self._lock``: let go of a kept fence."""
        if run_id in self._kept:
            self._kept.discard(run_id)
            fcntl.flock(self._fds[run_id], fcntl.LOCK_UN)

    def append(self, run_id: str, events: Sequence[Event]) -> None:
        data = encode_events(events)
        held = self._generations.get(run_id)
        with self._lock:
            fd = self._fd(run_id)
            # The fence of _fenced, written out (a map item's hot path); a kept one was
            # checked when it was taken, and no claim can be made while it is held.
            fenced = held is not None and run_id not in self._kept
            if fenced:
                fcntl.flock(fd, fcntl.LOCK_SH)
            keep = False
            try:
                if fenced and held is not None and os.access(self._claim_path(run_id, held + 1), os.F_OK):
                    raise RunTakenOverError(run_id, self.where, held, self._generation(run_id))
                # One write() on an O_APPEND descriptor: lines from several processes (pods
                # sharing the directory) never interleave on a local file system.
                written = os.write(fd, data)
                while written < len(data):
                    written += os.write(fd, data[written:])
                keep = fenced and run_id in self._lingering and not self._wanted(run_id)
            finally:
                if keep:
                    self._kept.add(run_id)
                elif fenced:
                    fcntl.flock(fd, fcntl.LOCK_UN)

    def sync(self, run_id: str) -> None:
        # On a copy of the descriptor: appends go on meanwhile, and a close cannot pull it away.
        with self._lock:
            self._release(run_id)  # before the fsync: a claim waits for no disk
            fd = self._fds.get(run_id)
            copy = os.dup(fd) if fd is not None else None
        if copy is not None:
            try:
                os.fsync(copy)
            finally:
                os.close(copy)

    def load(self, run_id: str) -> RunLog:
        directory = self._dir(run_id)
        try:
            text = (directory / "run.json").read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            raise RunNotFoundError(run_id, self.where) from None
        run = self._newest(run_id, decode_run_of(run_id, self.where, text))
        try:
            with open(directory / "events.jsonl", "rb") as handle:
                steps, torn = fold_lines(handle)
        except FileNotFoundError:
            steps, torn = {}, 0
        return RunLog(run, steps, torn)

    def load_record(self, run_id: str) -> RunRecord:
        try:
            text = (self._dir(run_id) / "run.json").read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            raise RunNotFoundError(run_id, self.where) from None
        return self._newest(run_id, decode_run_of(run_id, self.where, text))

    def _newest(self, run_id: str, run: RunRecord) -> RunRecord:
        """The record, or the newest claim's if its taker died before writing ``run.json``
        (so that the next taker expects the right generation, and sees the claim's lease)."""
        generation = self._generation(run_id)
        if generation <= run.generation:
            return run
        path = self._dir(run_id) / CLAIMS / f"{generation}.json"
        return decode_run_of(run_id, self.where, path.read_text(encoding="utf-8", errors="replace"))

    def read_event_lines(self, run_id: str, cursor: Any = None) -> tuple[list[bytes | str], Any]:
        """From byte offset ``cursor`` to the last complete line (a line being written is
        left for the next call)."""
        offset = int(cursor or 0)
        try:
            with open(self._dir(run_id) / "events.jsonl", "rb") as handle:
                handle.seek(offset)
                data = handle.read()
        except FileNotFoundError:
            return [], offset
        end = data.rfind(b"\n") + 1
        return list(data[:end].splitlines()), offset + end

    def log_location(self, run_id: str, name: str) -> str:
        return str(self._dir(run_id) / "logs" / name)

    def list_runs(self, limit: int = 50) -> list[RunRecord]:
        if not self.root.exists():
            return []
        runs = []
        for entry in self.root.iterdir():
            try:
                text = (entry / "run.json").read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue  # not a run directory (or not one yet)
            try:
                runs.append(decode_run(text))
            except ValueError as exc:
                runs.append(unreadable(entry.name, exc))
        runs.sort(key=lambda r: r.started_at or 0, reverse=True)
        return runs[:limit]

    def write_log(self, run_id: str, name: str, text: str) -> str:
        path = self._dir(run_id) / "logs" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, text)
        return str(path)

    def log_parts(self, location: str, run_id: str | None = None) -> list[str] | None:
        """The names below :attr:`root` of a log this store keeps (``RUN/logs/...``; of
        ``run_id`` when given), or None for any other place: the one statement of where this
        store's logs are, for :meth:`read_log` and the UI's log views."""
        parts = parts_beneath(self.root, location)
        if parts is None:
            parts = self._moved_parts(location)
        if parts is None or len(parts) < 3 or parts[1] != "logs":
            return None
        if run_id is not None and parts[0] != run_id:
            return None
        return parts

    def _moved_parts(self, location: str) -> list[str] | None:
        """``RUN/logs/...`` of a log written where this store's folder had another path: an
        Argo pod writes ``/data/runs/RUN/logs/...`` on the shared volume, which this machine
        mounts elsewhere. The first ``RUN/logs`` whose run folder is one of this store's."""
        if "\x00" in location or not os.path.isabs(location):
            return None
        names = Path(location).parts
        if ".." in names:
            return None
        for i in range(1, len(names) - 2):
            if names[i + 1] == "logs" and (self.root / names[i] / "logs").is_dir():
                return list(names[i:])
        return None

    def read_log(self, location: str) -> str:
        """A log this store wrote: ``location`` must be inside the ``logs`` folder of one of
        its runs, and is opened one folder at a time with no link followed, only if it is a
        regular file (``conveyor.beneath``), so that a run log naming another file (an edited
        ``log`` field, a link planted or swapped in among the logs, a FIFO) reads as no log."""
        parts = self.log_parts(location)
        if parts is None:
            return ""
        try:
            fd = open_beneath(self.root, parts)
            with open(fd, encoding="utf-8", errors="replace") as handle:
                return handle.read()
        except OSError:
            return ""

    def close(self) -> None:
        with self._lock:
            for fd in self._fds.values():
                os.close(fd)  # a kept fence goes with its descriptor
            self._fds.clear()
            self._kept.clear()
