"""The embedded default: runs live in this process only."""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Sequence
from typing import Any

from conveyor.runlog.base import RunExistsError, RunLog, RunLogStore, RunNotFoundError, RunTakenOverError
from conveyor.runlog.records import Event, RunRecord, fold


class MemoryRunLogStore(RunLogStore):
    """Keeps runs in this process: nothing to set up, nothing left behind (the default)."""

    where = "memory"

    def __init__(self, **config: Any) -> None:
        if config:
            raise ValueError(f"run log store 'memory' takes no config, found {sorted(config)}")
        self._runs: dict[str, RunRecord] = {}
        self._events: dict[str, list[Event]] = {}
        self._logs: dict[str, str] = {}
        self._lock = threading.Lock()

    def save_run(self, run: RunRecord, create: bool = False) -> None:
        with self._lock:
            if create and run.run_id in self._runs:
                raise RunExistsError(run.run_id, self.where)
            self._fence(run.run_id, run.generation)
            self._runs[run.run_id] = copy.deepcopy(run)
            self._events.setdefault(run.run_id, [])
            self._hold(run.run_id, run.generation)

    def _fence(self, run_id: str, held: int | None) -> None:
        current = self._runs[run_id].generation if run_id in self._runs else None
        if held is not None and current is not None and current > held:
            raise RunTakenOverError(run_id, self.where, held, current)

    def claim(self, run: RunRecord, expected_generation: int) -> bool:
        with self._lock:
            if run.run_id not in self._runs:
                raise RunNotFoundError(run.run_id, self.where)
            if self._runs[run.run_id].generation != expected_generation:
                return False
            run.generation = expected_generation + 1
            self._runs[run.run_id] = copy.deepcopy(run)
            self._hold(run.run_id, run.generation)
            return True

    def append(self, run_id: str, events: Sequence[Event]) -> None:
        with self._lock:
            self._fence(run_id, self._held(run_id))
            self._events.setdefault(run_id, []).extend(events)

    def load(self, run_id: str) -> RunLog:
        with self._lock:
            if run_id not in self._runs:
                raise RunNotFoundError(run_id, self.where)
            run, events = copy.deepcopy(self._runs[run_id]), list(self._events[run_id])
        return RunLog(run, fold(events))

    def list_runs(self, limit: int = 50) -> list[RunRecord]:
        with self._lock:
            runs = sorted(self._runs.values(), key=lambda r: r.started_at or 0, reverse=True)
            return [copy.deepcopy(r) for r in runs[:limit]]

    def read_event_lines(self, run_id: str, cursor: Any = None) -> tuple[list[bytes | str], Any]:
        seen = int(cursor or 0)
        with self._lock:
            events = list(self._events.get(run_id, [])[seen:])
        return [json.dumps(e.to_json(), default=str) for e in events], seen + len(events)

    def log_location(self, run_id: str, name: str) -> str:
        return f"memory:{run_id}/{name}"

    def write_log(self, run_id: str, name: str, text: str) -> str:
        location = self.log_location(run_id, name)
        with self._lock:
            self._logs[location] = text
        return location

    def read_log(self, location: str) -> str:
        return self._logs.get(location, "")
