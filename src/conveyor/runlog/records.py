"""What a run log holds, as types: statuses, events, attempts, step records, run records.

The code passes these objects; JSON exists only at a store's edge (``to_json`` and
``from_json``), so a field is named once and a misspelt one is a type error, not a silent
``None``. The JSON shapes are those every store has always written, so run logs written
before these types existed load unchanged.

Events (one JSON object each):
- ``{"e": "start", "path": [...], "type": "task", "attempt": 1, "t": 1.0}``
- ``{"e": "end", "path": [...], "attempt": 1, "t": 2.0, "status": "succeeded", ...}``
- ``{"e": "node", "path": [...], "type": "map", "status": "running", "info": {...}}``
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import cast

from conveyor.jsontypes import JSONObject, JSONValue

#: The one rule for run ids: a file name, a URL path part, a Kubernetes label value.
#: Checked with ``fullmatch`` in Python (``$`` alone lets a trailing newline through).
RUN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"
_RUN_ID = re.compile(RUN_ID_PATTERN)
#: The one rule for a run's tags (``--tag``, a server submission's ``tags``): shown in listings
#: and terminals and filtered by in URLs, so a short word of letters, digits and ``_.:=+/@-``.
TAG_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.:=+/@-]{0,99}$"


def new_run_id() -> str:
    """A fresh run id: sortable by time, unique by a random suffix."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + os.urandom(3).hex()


def check_run_id(run_id: str) -> str:
    """``run_id`` if it follows :data:`RUN_ID_PATTERN`; ValueError saying the rule if not."""
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
        raise ValueError(
            f"run id {run_id!r} is not valid: use letters, digits, '.', '_' and '-' "
            "(at most 63, starting with a letter or digit)"
        )
    return run_id


class Status(StrEnum):
    """Every status a run, a step or an attempt can have."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    #: A run marked running whose process is gone (killed, crashed): it can be resumed.
    INTERRUPTED = "interrupted"
    #: A step taken from an earlier attempt on resume (progress displays only).
    REUSED = "reused"
    UNKNOWN = "unknown"

    @property
    def finished(self) -> bool:
        """Whether nothing more will happen to it (the one definition of "terminal")."""
        return self in FINISHED

    @classmethod
    def of(cls, value: object) -> Status:
        """A status read from a store; anything unrecognised is UNKNOWN, never an error."""
        if not isinstance(value, str):
            return cls.UNKNOWN
        try:
            return cls(value)
        except ValueError:
            return cls.UNKNOWN


FINISHED = frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELLED})

#: The type a start event carries when none is given: only a task has attempts, so the run
#: log's own format names it (start events written without a type, by tests or by older
#: writers, read as a task's). The run log sits below the graph layer and cannot ask a kind.
ATTEMPTED_TYPE = "task"


@dataclass(slots=True)
class StartEvent:
    """An attempt of a task began."""

    path: list[str]
    attempt: int
    t: float
    type: str = ATTEMPTED_TYPE

    def to_json(self) -> JSONObject:
        return {"e": "start", "path": [*self.path], "type": self.type, "attempt": self.attempt, "t": self.t}


#: Characters of an error message a record keeps: an error is a summary (the step's log
#: has the whole traceback and message); one of megabytes would be copied into every page,
#: table and console line that shows it.
MAX_ERROR = 8192


def brief_error(error: str | None) -> str | None:
    """``error`` as a record keeps it: whole up to :data:`MAX_ERROR` characters, else its
    head and tail with how much was cut between them."""
    if error is None or len(error) <= MAX_ERROR:
        return error
    keep = MAX_ERROR // 2
    cut = len(error) - 2 * keep
    return (
        f"{error[:keep]}\n… ({cut} characters cut: the step's log has the whole message) …\n{error[-keep:]}"
    )


@dataclass(slots=True, kw_only=True)
class Outcome:
    """What an attempt produced: the fields an end event carries and an attempt keeps."""

    exit_code: int | None = None
    error: str | None = None
    returns: JSONObject = field(default_factory=dict)
    metrics: JSONObject = field(default_factory=dict)
    catalog: list[JSONObject] = field(default_factory=list)
    log: str | None = None


@dataclass(slots=True)
class EndEvent(Outcome):
    """An attempt of a task ended, with everything it produced."""

    path: list[str]
    attempt: int
    t: float
    status: Status
    started: float | None = None
    #: How the attempt ran when it was not simply run (cached, mocked, patched): kept in
    #: the step record's info. One event per attempt, even then (map items: a hot path).
    info: JSONObject = field(default_factory=dict)

    def to_json(self) -> JSONObject:
        # Built directly, empty values left out (one per map item: this is a hot path).
        data: JSONObject = {"e": "end", "path": [*self.path], "attempt": self.attempt, "t": self.t}
        if self.started is not None:
            data["started"] = self.started
        data["status"] = self.status.value
        # Written out rather than looped over by name: one check per field, no getattr.
        if self.exit_code is not None:
            data["exit_code"] = self.exit_code
        if self.error is not None:
            data["error"] = self.error
        if self.returns:
            data["returns"] = self.returns
        if self.metrics:
            data["metrics"] = self.metrics
        if self.catalog:
            data["catalog"] = cast(JSONValue, self.catalog)  # a list of JSON objects
        if self.log is not None:
            data["log"] = self.log
        if self.info:
            data["info"] = self.info
        return data


@dataclass(slots=True)
class NodeEvent:
    """A composite or stub node changed status (info: items, branch, error, returns...)."""

    path: list[str]
    type: str
    status: Status
    t: float
    info: JSONObject = field(default_factory=dict)

    def to_json(self) -> JSONObject:
        return {
            "e": "node",
            "path": [*self.path],
            "type": self.type,
            "status": str(self.status),
            "t": self.t,
            "info": self.info,
        }


Event = StartEvent | EndEvent | NodeEvent


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _time(value: object) -> float | None:
    """A time as it was written (an int stays an int); None if it is not a number."""
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _items(value: object) -> list[JSONValue]:
    return value if isinstance(value, list) else []


def _dict(value: object) -> JSONObject:
    """A JSON object decoded from a store as it is (its values are JSON); {} if not one."""
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[JSONObject]:
    """A list of JSON objects decoded from a store as it is (catalog entries); [] if not one."""
    return value if isinstance(value, list) else []


def event_from_json(data: object) -> Event | None:
    """An event read from a store; None for anything that is not one (skipped, not fatal)."""
    if not isinstance(data, dict):
        return None
    path = data.get("path")
    if not isinstance(path, list) or not all(isinstance(p, str) for p in path):
        return None
    kind, t = data.get("e"), _number(data.get("t")) or 0.0
    if kind == "start":
        return StartEvent(path, _int(data.get("attempt")) or 0, t, str(data.get("type") or ATTEMPTED_TYPE))
    if kind == "end":
        return EndEvent(
            path,
            _int(data.get("attempt")) or 0,
            t,
            Status.of(data.get("status", "failed")),
            started=_number(data.get("started")),
            exit_code=_int(data.get("exit_code")),
            error=data.get("error") if isinstance(data.get("error"), str) else None,
            returns=_dict(data.get("returns")),
            metrics=_dict(data.get("metrics")),
            catalog=_list(data.get("catalog")),
            log=data.get("log") if isinstance(data.get("log"), str) else None,
            info=_dict(data.get("info")),
        )
    if kind == "node":
        info = data.get("info")
        return NodeEvent(
            path, str(data.get("type") or "node"), Status.of(data.get("status")), t,
            info if isinstance(info, dict) else {},
        )  # fmt: skip
    return None


@dataclass(slots=True)
class Attempt(Outcome):
    """One try of a task, as folded from its start and end events."""

    attempt: int
    status: Status = Status.RUNNING
    start: float | None = None
    end: float | None = None

    def to_json(self) -> JSONObject:
        data: JSONObject = {
            "attempt": self.attempt,
            "status": self.status.value,
            "start": self.start,
            "end": self.end,
        }
        data.update((f.name, getattr(self, f.name)) for f in fields(Outcome))
        return data


@dataclass(slots=True)
class StepRecord:
    """Everything recorded for one step path: its kind, status, attempts and node info."""

    path: list[str]
    type: str | None = None
    status: Status = Status.RUNNING
    attempts: list[Attempt] = field(default_factory=list)
    start: float | None = None
    end: float | None = None
    info: JSONObject = field(default_factory=dict)

    @property
    def last(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None

    def to_json(self) -> JSONObject:
        data: JSONObject = {
            "path": [*self.path],
            "type": self.type,
            "status": str(self.status),
            "attempts": [a.to_json() for a in self.attempts],
        }
        if self.start is not None:
            data["start"] = self.start
        if self.end is not None:
            data["end"] = self.end
        if self.info:
            data["info"] = self.info
        return data

    def apply(self, event: Event) -> None:
        """Fold one more event into this record."""
        if isinstance(event, StartEvent):
            self.type = event.type
            self.attempts.append(Attempt(event.attempt, Status.RUNNING, start=event.t))
            self.status = Status.RUNNING
        elif isinstance(event, EndEvent):
            attempt = next((a for a in reversed(self.attempts) if a.attempt == event.attempt), None)
            if attempt is None:
                attempt = Attempt(event.attempt, start=event.started)
                self.attempts.append(attempt)
            if event.started is not None:
                attempt.start = event.started
            attempt.status, attempt.end = event.status, event.t
            attempt.exit_code, attempt.error, attempt.log = event.exit_code, event.error, event.log
            attempt.returns, attempt.metrics, attempt.catalog = event.returns, event.metrics, event.catalog
            if attempt is self.attempts[-1]:  # a late end of an older attempt leaves the step as it is
                self.status = event.status
            if event.info:
                self.info.update(event.info)
        else:
            self.type, self.status = event.type, event.status
            if self.start is None:
                self.start = event.t
            if event.status is not Status.RUNNING:
                self.end = event.t
            if event.info:
                self.info.update(event.info)


def step_from_json(data: object) -> StepRecord:
    """A step record as :meth:`StepRecord.to_json` wrote it (the server's API sends these)."""
    record = _dict(data)
    attempts = []
    for a in map(_dict, _items(record.get("attempts"))):
        attempt = Attempt(_int(a.get("attempt")) or 0, Status.of(a.get("status")))
        attempt.start, attempt.end = _time(a.get("start")), _time(a.get("end"))
        attempt.exit_code, attempt.error, attempt.log = (
            _int(a.get("exit_code")),
            _str(a.get("error")),
            _str(a.get("log")),
        )
        attempt.returns, attempt.metrics = _dict(a.get("returns")), _dict(a.get("metrics"))
        attempt.catalog = _list(a.get("catalog"))
        attempts.append(attempt)
    return StepRecord(
        [str(p) for p in _items(record.get("path"))],
        _str(record.get("type")),
        Status.of(record.get("status")),
        attempts,
        _time(record.get("start")),
        _time(record.get("end")),
        _dict(record.get("info")),
    )


def fold(events: Iterable[Event]) -> dict[tuple[str, ...], StepRecord]:
    """Fold an event stream into one record per step path, in first-seen order.

    Keys are path tuples: no separator character joins them, so no two paths collide,
    whatever their step names hold.
    """
    steps: dict[tuple[str, ...], StepRecord] = {}
    for event in events:
        key = tuple(event.path)
        record = steps.get(key)
        if record is None:
            record = steps[key] = StepRecord(list(event.path), getattr(event, "type", None))
        record.apply(event)
    return steps


def fold_json(items: Iterable[object]) -> dict[tuple[str, ...], StepRecord]:
    """Fold events as decoded from JSON, skipping anything that is not an event."""
    return fold(e for e in map(event_from_json, items) if e is not None)


_RUN_FIELDS = (
    "run_id",
    "pipeline_name",
    "pipeline_file",
    "pipeline_hash",
    "pipeline",
    "config",
    "config_file",
    "status",
    "started_at",
    "ended_at",
    "initial_parameters",
    "final_parameters",
    "pid",
    "host",
    "workdir",
    "resumed",
    "lease_until",
    "generation",
    "error",
    "orchestrator",
    "orchestrator_status",
    "replayed_status",
    "cancel_requested",
)


@dataclass(slots=True)
class RunRecord:
    """The small record of a run, replaced whole when its status changes.

    Keys this version does not know are kept in ``extra`` and written back, so an older
    or newer conveyor sharing the store loses nothing.
    """

    run_id: str
    pipeline_name: str | None = None
    pipeline_file: str | None = None
    pipeline_hash: str | None = None
    pipeline: JSONObject = field(default_factory=dict)
    config: JSONObject = field(default_factory=dict)
    config_file: str | None = None
    status: Status = Status.RUNNING
    started_at: float | None = None
    ended_at: float | None = None
    #: The parameters the run started with: JSON from a file or the environment, but the
    #: SDK may pass any object (the store writes one that is not JSON as its text).
    initial_parameters: dict[str, object] = field(default_factory=dict)
    final_parameters: JSONObject = field(default_factory=dict)
    pid: int | None = None
    host: str | None = None
    workdir: str | None = None
    resumed: int = 0
    #: While running: the time until which its driver has promised a heartbeat. Past it,
    #: the run is interrupted, whichever host looks (see ``runlog.base.effective_status``).
    lease_until: float | None = None
    #: The fencing token of the run's driver: 0 for the run's first driver, one more with
    #: each takeover (:meth:`RunLogStore.claim`). A driver whose generation is behind the
    #: store's has been taken over and may write nothing more.
    generation: int = 0
    error: str | None = None
    orchestrator: str | None = None
    orchestrator_status: str | None = None
    replayed_status: str | None = None
    #: When a user asked the orchestrator to stop the run (``conveyor runs cancel`` on an
    #: Argo run): the orchestrator then reports only "Failed", so the run's end reads this
    #: to record it as cancelled.
    cancel_requested: float | None = None
    extra: JSONObject = field(default_factory=dict)

    def to_json(self) -> JSONObject:
        data: JSONObject = {name: getattr(self, name) for name in _RUN_FIELDS}
        data["status"] = str(self.status)
        for name in (
            "error",
            "orchestrator",
            "orchestrator_status",
            "replayed_status",
            "lease_until",
            "cancel_requested",
        ):
            if data[name] is None:
                del data[name]
        data.update(self.extra)
        return data

    @classmethod
    def from_json(cls, data: object) -> RunRecord:
        """A run record read from a store; raises ValueError if it is not one."""
        if not isinstance(data, dict) or not isinstance(data.get("run_id"), str):
            raise ValueError("not a run record: it has no 'run_id'")
        known = {k: data[k] for k in _RUN_FIELDS if k in data}
        extra = {k: v for k, v in data.items() if k not in _RUN_FIELDS}
        record = cls(run_id=known.pop("run_id"), extra=extra)
        for name, value in known.items():
            setattr(record, name, value)
        record.status = Status.of(data.get("status", "unknown"))
        for name in ("pipeline", "config", "initial_parameters", "final_parameters"):
            if not isinstance(getattr(record, name), dict):
                setattr(record, name, {})
        for name in ("started_at", "ended_at", "lease_until", "cancel_requested"):
            setattr(record, name, _number(getattr(record, name)))
        record.pid = _int(record.pid)
        record.resumed = _int(record.resumed) or 0
        record.generation = _int(record.generation) or 0
        return record
