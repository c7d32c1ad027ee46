"""The file run log store on object storage (S3 and any fsspec URL), through fsspec.

Object stores have no append: each batch of events becomes an object of its own under
``events/``, named so that listing returns them in order; the run record is replaced with
one PUT (atomic on S3). Reading lists the run's event objects and concatenates them.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
from typing import Any

from conveyor.runlog.base import RunLog, RunNotFoundError, fold_steps
from conveyor.runlog.file import FileRunLogStore, _encode

_counter = itertools.count()


class ObjectRunLogStore(FileRunLogStore):
    def __init__(self, path: str, storage_options: dict[str, Any] | None = None) -> None:
        import fsspec.core

        self.fs, root = fsspec.core.url_to_fs(path, **(storage_options or {}))
        self.url_root = root.rstrip("/")
        self.where = path
        self._lock = threading.Lock()

    def _key(self, run_id: str, *parts: str) -> str:
        if not run_id or "/" in run_id or run_id.startswith("."):
            raise ValueError(f"not a valid run id: {run_id!r}")
        return "/".join([self.url_root, run_id, *parts])

    def save_run(self, run: dict[str, Any]) -> None:
        self.fs.pipe_file(
            self._key(run["run_id"], "run.json"), json.dumps(run, indent=1, default=str).encode()
        )

    def append(self, run_id: str, events: list[dict[str, Any]]) -> None:
        data = "".join(_encode(e) + "\n" for e in events).encode()
        # Time first, so that names sort in write order across processes; then pid and a counter.
        name = f"{time.time_ns():020d}-{os.getpid():07d}-{next(_counter):09d}.jsonl"
        self.fs.pipe_file(self._key(run_id, "events", name), data)

    def load(self, run_id: str) -> RunLog:
        try:
            run = json.loads(self.fs.cat_file(self._key(run_id, "run.json")))
        except FileNotFoundError:
            raise RunNotFoundError(run_id, self.where) from None
        self.fs.invalidate_cache()
        try:
            names = sorted(self.fs.find(self._key(run_id, "events")))
        except FileNotFoundError:
            names = []
        blobs = self.fs.cat(names) if names else {}
        events = []
        for name in names:
            for line in blobs[name].decode().splitlines():
                try:
                    events.append(json.loads(line))
                except ValueError:
                    continue
        return RunLog(run, fold_steps(events))

    def list_runs(self, limit: int = 50) -> list[dict[str, Any]]:
        self.fs.invalidate_cache()
        try:
            entries = self.fs.ls(self.url_root, detail=False)
        except FileNotFoundError:
            return []
        runs = []
        for entry in entries:
            try:
                runs.append(json.loads(self.fs.cat_file(f"{entry.rstrip('/')}/run.json")))
            except (FileNotFoundError, ValueError):
                continue
        runs.sort(key=lambda r: r.get("started_at") or 0, reverse=True)
        return runs[:limit]

    def write_log(self, run_id: str, name: str, text: str) -> str:
        key = self._key(run_id, "logs", name)
        self.fs.pipe_file(key, text.encode())
        return str(self.fs.unstrip_protocol(key))

    def read_log(self, location: str) -> str:
        try:
            return bytes(self.fs.cat_file(location)).decode(errors="replace")
        except (FileNotFoundError, OSError):
            return ""

    def close(self) -> None:
        pass
