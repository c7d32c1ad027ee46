"""The embedded default: runs live in this process only."""

from __future__ import annotations

import copy
import threading
from typing import Any

from conveyor.runlog.base import RunLog, RunLogStore, RunNotFoundError, fold_steps


class MemoryRunLogStore(RunLogStore):
    where = "memory"

    def __init__(self, **config: Any) -> None:
        if config:
            raise ValueError(f"run log store 'memory' takes no config, found {sorted(config)}")
        self._runs: dict[str, dict[str, Any]] = {}
        self._events: dict[str, list[dict[str, Any]]] = {}
        self._logs: dict[str, str] = {}
        self._lock = threading.Lock()

    def save_run(self, run: dict[str, Any]) -> None:
        with self._lock:
            self._runs[run["run_id"]] = copy.deepcopy(run)
            self._events.setdefault(run["run_id"], [])

    def append(self, run_id: str, events: list[dict[str, Any]]) -> None:
        with self._lock:
            self._events.setdefault(run_id, []).extend(events)

    def load(self, run_id: str) -> RunLog:
        with self._lock:
            if run_id not in self._runs:
                raise RunNotFoundError(run_id, self.where)
            return RunLog(copy.deepcopy(self._runs[run_id]), fold_steps(list(self._events[run_id])))

    def list_runs(self, limit: int = 50) -> list[dict[str, Any]]:
        with self._lock:
            runs = sorted(self._runs.values(), key=lambda r: r.get("started_at") or 0, reverse=True)
            return [copy.deepcopy(r) for r in runs[:limit]]

    def write_log(self, run_id: str, name: str, text: str) -> str:
        location = f"memory:{run_id}/{name}"
        with self._lock:
            self._logs[location] = text
        return location

    def read_log(self, location: str) -> str:
        return self._logs.get(location, "")
