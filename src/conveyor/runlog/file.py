"""A directory per run: ``run.json`` (atomic replace), ``events.jsonl`` (append), ``logs/``.

Each batch of events is written with a single ``write`` and flushed, so a run killed with
SIGKILL loses nothing that was recorded; a line cut short by a crash mid-write is skipped
when reading, and the next writer starts on a fresh line so it cannot swallow what follows.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from conveyor.runlog.base import RunExistsError, RunLog, RunLogStore, RunNotFoundError
from conveyor.runlog.codec import (
    decode_run,
    decode_run_of,
    encode_events,
    encode_run,
    fold_lines,
    unreadable,
)
from conveyor.runlog.records import Event, RunRecord, check_run_id


def atomic_write(path: Path, text: str) -> None:
    """Write a temporary file beside ``path`` and rename it over: readers see old or new."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def file_store(path: str = ".conveyor/runs", storage_options: dict[str, Any] | None = None) -> RunLogStore:
    """The ``file`` run log store: a local directory, or (for a URL such as
    ``s3://bucket/runs``) the same layout in object storage."""
    if "://" in path and not path.startswith("file://"):
        from conveyor.runlog.objects import ObjectRunLogStore

        return ObjectRunLogStore(path, storage_options)
    return FileRunLogStore(path)


class FileRunLogStore(RunLogStore):
    """Runs in a local directory (shared by pods through a volume, or on a laptop)."""

    def __init__(self, path: str = ".conveyor/runs") -> None:
        path = path.removeprefix("file://")
        self.root = Path(path).expanduser().absolute()
        self.where = str(self.root)
        self._fds: dict[str, int] = {}
        self._lock = threading.Lock()

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
        atomic_write(directory / "run.json", encode_run(run, indent=1))

    def _open(self, run_id: str) -> int:
        path = self._dir(run_id) / "events.jsonl"
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        # A crash mid-write leaves a torn last line: start on a fresh one.
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            os.write(fd, b"\n")
        return fd

    def append(self, run_id: str, events: Sequence[Event]) -> None:
        data = encode_events(events)
        with self._lock:
            fd = self._fds.get(run_id)
            if fd is None:
                fd = self._fds[run_id] = self._open(run_id)
            # One write() on an O_APPEND descriptor: lines from several processes (pods
            # sharing the directory) never interleave on a local file system.
            written = os.write(fd, data)
            while written < len(data):
                written += os.write(fd, data[written:])

    def load(self, run_id: str) -> RunLog:
        directory = self._dir(run_id)
        try:
            text = (directory / "run.json").read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            raise RunNotFoundError(run_id, self.where) from None
        run = decode_run_of(run_id, self.where, text)
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
        return decode_run_of(run_id, self.where, text)

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

    def read_log(self, location: str) -> str:
        try:
            return Path(location).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def close(self) -> None:
        with self._lock:
            for fd in self._fds.values():
                os.close(fd)
            self._fds.clear()
