"""A directory per run: ``run.json`` (atomic replace), ``events.jsonl`` (append), ``logs/``.

Each event is one JSON line written with a single ``write`` and flushed, so a run killed
with SIGKILL loses nothing that was recorded; a line cut short by a crash mid-write is
skipped when reading.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from conveyor.runlog.base import RunLog, RunLogStore, RunNotFoundError, fold_steps

_encode = json.JSONEncoder(separators=(",", ":"), default=str).encode


def atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


class FileRunLogStore(RunLogStore):
    """A directory per run. A URL (``s3://bucket/runs``) keeps it in object storage instead."""

    def __new__(
        cls, path: str = ".conveyor/runs", storage_options: dict[str, Any] | None = None
    ) -> FileRunLogStore:
        if cls is FileRunLogStore and "://" in path and not path.startswith("file://"):
            from conveyor.runlog.objects import ObjectRunLogStore

            # Python then runs ObjectRunLogStore.__init__ on it, once.
            return super().__new__(ObjectRunLogStore)
        return super().__new__(cls)

    def __init__(self, path: str = ".conveyor/runs", storage_options: dict[str, Any] | None = None) -> None:
        path = path.removeprefix("file://")
        self.root = Path(path).expanduser().absolute()
        self.where = str(self.root)
        self._fds: dict[str, int] = {}
        self._lock = threading.Lock()

    def _dir(self, run_id: str) -> Path:
        if not run_id or "/" in run_id or run_id.startswith("."):
            raise ValueError(f"not a valid run id: {run_id!r}")
        return self.root / run_id

    def save_run(self, run: dict[str, Any]) -> None:
        directory = self._dir(run["run_id"])
        directory.mkdir(parents=True, exist_ok=True)
        atomic_write(directory / "run.json", json.dumps(run, indent=1, default=str))

    def append(self, run_id: str, events: list[dict[str, Any]]) -> None:
        data = "".join(_encode(e) + "\n" for e in events).encode()
        with self._lock:
            fd = self._fds.get(run_id)
            if fd is None:
                path = self._dir(run_id) / "events.jsonl"
                fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                self._fds[run_id] = fd
            # One write() on an O_APPEND descriptor: lines from several processes (pods
            # sharing the directory) never interleave on a local file system.
            written = os.write(fd, data)
            while written < len(data):
                written += os.write(fd, data[written:])

    def _events(self, run_id: str) -> list[dict[str, Any]]:
        path = self._dir(run_id) / "events.jsonl"
        if not path.exists():
            return []
        events = []
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                try:
                    events.append(json.loads(line))
                except ValueError:
                    continue  # a line cut short by a crash
        return events

    def load(self, run_id: str) -> RunLog:
        path = self._dir(run_id) / "run.json"
        try:
            run = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RunNotFoundError(run_id, self.where) from None
        return RunLog(run, fold_steps(self._events(run_id)))

    def list_runs(self, limit: int = 50) -> list[dict[str, Any]]:
        if not self.root.exists():
            return []
        runs = []
        for entry in self.root.iterdir():
            try:
                runs.append(json.loads((entry / "run.json").read_text(encoding="utf-8")))
            except (OSError, ValueError):
                continue
        runs.sort(key=lambda r: r.get("started_at") or 0, reverse=True)
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
