"""The run log interface and the one way every store folds events into step records.

A run is a small record (rewritten atomically when its status changes) plus an append-only
stream of step events. Appending keeps the cost of recording a step constant, however long
the run: the log is never rewritten whole per step.

Events (plain JSON):
- ``{"e": "start", "path": [...], "type": "task", "attempt": 1, "t": 1.0}``
- ``{"e": "end", "path": [...], "attempt": 1, "t": 2.0, "status": "succeeded", ...}``
- ``{"e": "node", "path": [...], "type": "map", "status": "running", "info": {...}}``
"""

from __future__ import annotations

import os
import socket
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

RUN_FINAL = ("succeeded", "failed", "cancelled")


class RunNotFoundError(KeyError):
    """No run with this id in the store."""

    def __str__(self) -> str:
        return f"no run '{self.args[0]}' in {self.args[1] if len(self.args) > 1 else 'the run log'}"


def step_key(path: Iterable[str]) -> str:
    """A step's key in a folded run log: its path through branches and map items."""
    return "\x1f".join(path)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def effective_status(run: dict[str, Any]) -> str:
    """A run marked running whose process is gone was interrupted (killed, crashed)."""
    status = str(run.get("status", "unknown"))
    if status != "running":
        return status
    pid, host = run.get("pid"), run.get("host")
    if isinstance(pid, int) and host == socket.gethostname() and not _pid_alive(pid):
        return "interrupted"
    return status


def fold_steps(events: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Fold the event stream into one record per step path, in first-seen order."""
    steps: dict[str, dict[str, Any]] = {}
    for event in events:
        path = event.get("path")
        if not isinstance(path, list):
            continue
        key = step_key(path)
        record = steps.get(key)
        if record is None:
            record = {"path": path, "type": event.get("type"), "status": "running", "attempts": []}
            steps[key] = record
        kind = event.get("e")
        if kind == "start":
            record["type"] = event.get("type", record["type"])
            record["attempts"].append(
                {"attempt": event.get("attempt"), "start": event.get("t"), "status": "running"}
            )
            record["status"] = "running"
        elif kind == "end":
            attempt = next(
                (a for a in reversed(record["attempts"]) if a["attempt"] == event.get("attempt")),
                None,
            )
            if attempt is None:
                attempt = {"attempt": event.get("attempt"), "start": event.get("started")}
                record["attempts"].append(attempt)
            attempt.update({k: v for k, v in event.items() if k not in {"e", "path", "type", "t"}})
            attempt["end"] = event.get("t")
            record["status"] = event.get("status", "failed")
        elif kind == "node":
            record["type"] = event.get("type", record["type"])
            record["status"] = event.get("status", record["status"])
            record.setdefault("start", event.get("t"))
            if record["status"] != "running":
                record["end"] = event.get("t")
            if event.get("info"):
                record.setdefault("info", {}).update(event["info"])
    return steps


@dataclass
class RunLog:
    """One run as read back: its record and its folded steps."""

    run: dict[str, Any]
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return effective_status(self.run)

    def succeeded(self, path: list[str]) -> dict[str, Any] | None:
        """The succeeded attempt recorded for ``path``, if any (what resume reuses)."""
        record = self.steps.get(step_key(path))
        if record and record["status"] == "succeeded" and record["attempts"]:
            last: dict[str, Any] = record["attempts"][-1]
            return last
        return None


class RunLogStore(ABC):
    """Where runs are recorded. Stores are found by ``type`` name (entry points)."""

    #: A human description of where the store keeps runs, for messages.
    where: str = "the run log"

    @abstractmethod
    def save_run(self, run: dict[str, Any]) -> None:
        """Create or replace the run record (small; atomic)."""

    @abstractmethod
    def append(self, run_id: str, events: list[dict[str, Any]]) -> None:
        """Append step events; durable once this returns, even if the process is killed."""

    @abstractmethod
    def load(self, run_id: str) -> RunLog:
        """Read a run back; raise RunNotFoundError if there is none."""

    @abstractmethod
    def list_runs(self, limit: int = 50) -> list[dict[str, Any]]:
        """Run records, newest first."""

    @abstractmethod
    def write_log(self, run_id: str, name: str, text: str) -> str:
        """Keep an attempt's captured output; return where it is."""

    @abstractmethod
    def read_log(self, location: str) -> str:
        """Read back captured output written by :meth:`write_log`."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release files or connections."""
