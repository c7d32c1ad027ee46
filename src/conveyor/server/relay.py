"""The trusted end of a sandboxed run's run log: check each request, then write it.

A server run's engine runs in the sandbox with the user's code; it records through
``conveyor.runlog.relay``, one JSON line per write. This side is the only one that holds
the database. It reads nothing from the run but those lines, and it takes a line only when
it is a bounded, well-typed request about this run:

- a line is at most ``max_line`` bytes and JSON nested at most ``MAX_DEPTH`` deep;
- ``save`` carries a run record of this run's id, each field of its type; what the
  server knows better (the driver's pid and host) is the server's;
- ``append`` carries events of the run log's types, for this run, whose log locations are
  this run's own (an event may not point the API at another run's log);
- ``log`` carries an attempt's output under this run's name, cut to ``max_log`` bytes
  (its tail kept), with the operator's secret values masked.

Anything else is a violation: the answer says why, and the worker stops the run and fails it
with that message. Answers go back one line each, in order. The run does not wait for the
answer to each append (``conveyor.runlog.relay``): appends that arrive together are written
in one transaction, and their answers go back together; a run that writes faster than the
database takes fills the pipe and is slowed down, and no write is lost.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, NotRequired, TypedDict

from conveyor.jsontypes import JSONObject, JSONValue
from conveyor.runlog.base import RunExistsError, RunLogStore, RunNotFoundError
from conveyor.runlog.records import (
    EndEvent,
    Event,
    NodeEvent,
    RunRecord,
    StartEvent,
    Status,
    brief_error,
    event_from_json,
)

#: JSON nested deeper than this is refused (parameters are bounded at submission too).
MAX_DEPTH = 64
#: The longest step path, in parts (pipelines nest far less; loops and maps add two a level).
MAX_PATH = 256
_TEXT_FIELDS = (
    "pipeline_name",
    "pipeline_file",
    "pipeline_hash",
    "config_file",
    "workdir",
    "error",
    "orchestrator",
    "orchestrator_status",
    "replayed_status",
)
_DICT_FIELDS = ("pipeline", "config", "initial_parameters", "final_parameters")


class Violation(Exception):
    """A request the trusted side does not take; the run is stopped with this message."""


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


@dataclass
class RelayLimits:
    """Bounds on what a run may say (``CONVEYOR_SERVER_MAX_EVENT_BYTES``, ``..._MAX_LOG_BYTES``)."""

    max_line: int = field(default_factory=lambda: _env_int("CONVEYOR_SERVER_MAX_EVENT_BYTES", 16 << 20))
    max_log: int = field(default_factory=lambda: _env_int("CONVEYOR_SERVER_MAX_LOG_BYTES", 8 << 20))
    #: What one run may keep in the database, in all: its events and the latest text of each
    #: of its logs (a log rewritten while it grows counts once, at its newest size).
    max_run: int = field(default_factory=lambda: _env_int("CONVEYOR_SERVER_MAX_RUN_BYTES", 1 << 30))


class Reply(TypedDict):
    """The answer to one request, a JSON line back to the run: ``ok``, and what the run's
    end (``conveyor.runlog.relay``) reads of it: why it was refused, whether a created run
    existed already, whether a claim was won, where a log was written."""

    ok: bool
    error: NotRequired[str]
    exists: NotRequired[bool]
    won: NotRequired[bool]
    location: NotRequired[str]


def _depth(value: JSONValue) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if level > MAX_DEPTH:
            return level
        if isinstance(item, dict):
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, level + 1) for v in item)
    return deepest


class Relay:
    """Serves one run's relayed writes into ``store`` (the server's database)."""

    def __init__(
        self,
        store: RunLogStore,
        run_id: str,
        driver_pid: Callable[[], int | None],
        secrets: list[str] | None = None,
        config: JSONObject | None = None,
        limits: RelayLimits | None = None,
        pipeline_name: str | None = None,
        pipeline_file: str | None = None,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.driver_pid = driver_pid
        self.secrets = sorted({s for s in secrets or [] if len(s) >= 4}, key=len, reverse=True)
        self.config = config
        self.limits = limits or RelayLimits()
        self.violation: str | None = None
        #: The status of the last run record the run saved (None: none saved): a run
        #: succeeds only if its own record says so, whatever its process's exit code.
        self.recorded: Status | None = None
        self._event_bytes = 0
        self._log_bytes: dict[str, int] = {}
        #: The name the run was submitted under (the engine knows only its work directory's).
        self.pipeline_name = pipeline_name
        #: The file it was submitted from, as the user named it: the record never carries the
        #: path of the worker's own copy (a temporary folder the user never saw).
        self.pipeline_file = pipeline_file
        self.writes = 0
        #: The events of appends read but not yet written (one group commit, see :meth:`serve`).
        self._pending: list[list[Event]] = []
        self._log_prefix = f"{store.log_location(run_id, '')}"

    # -- the loop ---------------------------------------------------------------------

    def serve(self, requests: IO[bytes], answers: IO[bytes]) -> None:
        """Answer requests until the run closes its end (or breaks a rule: then stop).

        Requests are read as they come, many at a time: the events of the appends that
        arrived together are written in one transaction (a group commit), before any other
        request is handled and before the next read waits; then their answers go back."""
        parts: list[bytes] = []  # of a line not ended yet (joined once it ends: no copies)
        held = 0
        while True:
            chunk = requests.read1(1 << 16) if hasattr(requests, "read1") else requests.read(1 << 16)
            if not chunk and not parts:
                return
            if chunk and b"\n" not in chunk and held + len(chunk) <= self.limits.max_line:
                parts.append(chunk)
                held += len(chunk)
                continue
            lines = b"".join([*parts, chunk]).split(b"\n")
            buffer = lines.pop()
            parts, held = ([buffer], len(buffer)) if buffer else ([], 0)
            replies: list[Reply] = []
            try:
                if not chunk:  # the run's end closed in the middle of a line
                    raise Violation("the run sent a run log write that does not end its line")
                for line in lines:
                    self._check_size(len(line) + 1)
                    replies.extend(self._take(line + b"\n"))
                replies.extend(self._commit())
                self._check_size(len(buffer) if len(buffer) > self.limits.max_line else 0)
            except Violation as exc:
                self.violation = str(exc)
                with contextlib.suppress(Exception):  # what came before the broken rule is kept
                    replies.extend(self._commit())
            except Exception as exc:  # the store refused (taken over) or failed: the run stops
                self.violation = f"the server could not record the run: {exc}"[:2000]
            if self.violation:
                self._pending.clear()
                replies.append({"ok": False, "error": self.violation})
            self.writes += len(replies) - (1 if self.violation else 0)
            if not self._answer(answers, replies) or self.violation:
                return

    def _check_size(self, size: int) -> None:
        if size > self.limits.max_line:
            raise Violation(
                f"the run sent a run log write of more than {self.limits.max_line:,} bytes "
                "(CONVEYOR_SERVER_MAX_EVENT_BYTES)"
            )

    def _take(self, line: bytes) -> list[Reply]:
        """Check one request: an append joins the group to commit; anything else commits
        the group first, then is applied. The answers now due, in order."""
        request = self._parse(line)
        if request.get("op") == "append":
            self._same_run(request.get("run_id"))
            events = self._events(request.get("events"))
            self._event_bytes += len(line)
            self._within_total()
            self._pending.append(events)
            return []
        return [*self._commit(), self._apply(request)]

    def _commit(self) -> list[Reply]:
        """Write the pending appends' events in one transaction; their answers."""
        if not self._pending:
            return []
        groups, self._pending = self._pending, []
        self.store.append(self.run_id, [event for events in groups for event in events])
        return [{"ok": True} for _ in groups]

    def serve_in_thread(self, requests: IO[bytes], answers: IO[bytes]) -> threading.Thread:
        """:meth:`serve` on a thread of its own (the worker's heartbeats go on meanwhile)."""
        thread = threading.Thread(target=self.serve, args=(requests, answers), daemon=True)
        thread.start()
        return thread

    @staticmethod
    def _answer(answers: IO[bytes], replies: list[Reply]) -> bool:
        if not replies:
            return True
        try:
            answers.write(b"".join(json.dumps(reply).encode() + b"\n" for reply in replies))
            answers.flush()
        except (BrokenPipeError, OSError, ValueError):
            return False
        return True

    # -- one request ----------------------------------------------------------------------

    def handle(self, line: bytes) -> Reply:
        """Check and apply one request line at once (an append is written before this
        returns); the answer to send back."""
        request = self._parse(line)
        if request.get("op") == "append":
            self._take(line)
            return self._commit()[0]
        return self._apply(request)

    @staticmethod
    def _parse(line: bytes) -> JSONObject:
        try:
            request: JSONValue = json.loads(line)
        except (ValueError, RecursionError):
            raise Violation("the run sent a run log write that is not JSON") from None
        # Each level of nesting takes an opening bracket (those inside strings only count
        # too many): a line with few of them, as events are, is not walked.
        shallow = line.count(b"[") + line.count(b"{") < MAX_DEPTH
        if not isinstance(request, dict) or (not shallow and _depth(request) > MAX_DEPTH):
            raise Violation(f"the run sent a run log write nested deeper than {MAX_DEPTH} levels")
        return request

    def _apply(self, request: JSONObject) -> Reply:
        """A request other than an append, checked and applied."""
        op = request.get("op")
        if op == "save":
            return self._save(request)
        if op == "claim":
            return self._claim(request)
        if op == "log":
            self._same_run(request.get("run_id"))
            return {"ok": True, "location": self._log(request.get("name"), request.get("text"))}
        raise Violation(f"the run sent an unknown run log request {str(op)[:40]!r}")

    def _same_run(self, run_id: JSONValue) -> None:
        if run_id != self.run_id:
            raise Violation(f"the run wrote to another run's log ({str(run_id)[:80]!r})")

    def _save(self, request: JSONObject) -> Reply:
        run = self._record(request.get("run"))
        try:
            self.store.save_run(run, create=bool(request.get("create")))
        except RunExistsError as exc:
            return {"ok": False, "exists": True, "error": str(exc)}
        self.recorded = run.status
        return {"ok": True}

    def _claim(self, request: JSONObject) -> Reply:
        """Take over the run (a retry of an interrupted run): the store's one atomic claim."""
        run = self._record(request.get("run"))
        expected = request.get("expected")
        if not isinstance(expected, int) or isinstance(expected, bool):
            raise Violation("the run sent a claim without a generation")
        try:
            won = self.store.claim(run, expected)
        except RunNotFoundError as exc:
            return {"ok": False, "error": str(exc)}
        return {"ok": True, "won": bool(won)}

    def _record(self, data: JSONValue) -> RunRecord:
        """The run record of a save or claim, checked field by field; the server's facts set."""
        if not isinstance(data, dict):
            raise Violation("the run sent a run record that is not an object")
        self._same_run(data.get("run_id"))
        for name in _TEXT_FIELDS:
            if data.get(name) is not None and not isinstance(data[name], str):
                raise Violation(f"the run's record has '{name}' of type {type(data[name]).__name__}")
        for name in _DICT_FIELDS:
            if data.get(name) is not None and not isinstance(data[name], dict):
                raise Violation(f"the run's record has '{name}' of type {type(data[name]).__name__}")
        run = RunRecord.from_json(data)
        if run.status is Status.UNKNOWN:
            raise Violation(f"the run's record has the status {str(data.get('status'))[:40]!r}")
        run.pid, run.host = self.driver_pid(), os.uname().nodename
        if self.config is not None:
            run.config = self.config
        if self.pipeline_name:
            run.pipeline_name = self.pipeline_name
        run.pipeline_file = self.pipeline_file
        if run.error:
            run.error = brief_error(self.mask(run.error))
        return run

    def _events(self, items: JSONValue) -> list[Event]:
        if not isinstance(items, list):
            raise Violation("the run sent events that are not a list")
        events = []
        for item in items:
            event = event_from_json(item) if isinstance(item, dict) else None
            if not isinstance(event, StartEvent | EndEvent | NodeEvent):
                raise Violation("the run sent something that is not a run log event")
            path = event.path
            if not isinstance(path, list) or not 0 < len(path) <= MAX_PATH:
                raise Violation("the run sent an event with no step path, or one too deep")
            if not all(isinstance(part, str) and len(part) <= 1000 for part in path):
                raise Violation("the run sent an event whose step path is not a list of names")
            if isinstance(event, EndEvent):
                self._check_end(event)
            events.append(event)
        return events

    def _check_end(self, event: EndEvent) -> None:
        if event.log is not None and (
            not isinstance(event.log, str) or not event.log.startswith(self._log_prefix)
        ):
            raise Violation("the run sent an attempt whose log is not one of its own")
        for name in ("returns", "metrics", "info"):
            if not isinstance(getattr(event, name), dict):
                raise Violation(f"the run sent an attempt whose {name} are not an object")
        if not isinstance(event.catalog, list):
            raise Violation("the run sent an attempt whose catalog entries are not a list")
        if event.error is not None:
            event.error = brief_error(self.mask(str(event.error)))

    def _log(self, name: JSONValue, text: JSONValue) -> str:
        if not isinstance(name, str) or not name or len(name) > 2000 or "\x00" in name:
            raise Violation("the run sent a log with no valid name")
        if not isinstance(text, str):
            raise Violation("the run sent a log that is not text")
        limit = self.limits.max_log
        if len(text) > limit:
            text = (
                f"[conveyor: the first {len(text) - limit:,} characters of this output were dropped: "
                f"the server keeps at most {limit:,} (CONVEYOR_SERVER_MAX_LOG_BYTES)]\n" + text[-limit:]
            )
        self._log_bytes[name] = len(text)
        self._within_total()
        return self.store.write_log(self.run_id, name, self.mask(text))

    def _within_total(self) -> None:
        total = self._event_bytes + sum(self._log_bytes.values())
        if total > self.limits.max_run:
            raise Violation(
                f"the run wrote more than {self.limits.max_run:,} bytes of run log and output "
                "(CONVEYOR_SERVER_MAX_RUN_BYTES)"
            )

    def mask(self, text: str) -> str:
        """``text`` with the operator's secret values given to this run replaced by ``***``."""
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, "***")
        return text
