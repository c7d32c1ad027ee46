"""The run log store of a sandboxed server run: every write is a JSON line to the trusted side.

On the server, a run's engine runs inside the sandbox with the user's code (it unpickles
object returns, reads cache entries, runs reducers), so it must not hold the server's
database. It records through this store instead: each write is one JSON request on a pipe
(``CONVEYOR_RELAY_FDS=write,read``), answered by one JSON line from the worker, which checks
the request against the run log's types and bounds and writes it to the database for this
run only (``conveyor.server.relay``). A save, claim or log waits for its answer. An append
does not: once on the pipe, it is safe from the engine's death (the worker reads what the
pipe holds), and the worker writes the appends that arrive together in one transaction;
:meth:`RelayRunLogStore.sync` waits until they are in the database, which the store
writer does for each group (``durability: batched``; ``strict``: after each append). A
full pipe is the back-pressure: a run that writes faster than the database takes is
slowed, never dropped.

Reads come from a mirror in memory, seeded from the run's log as the worker read it before
the start (``snapshot``: a JSON lines file), so ``conveyor retry`` resumes a run inside the
sandbox without a way back to the database.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import threading
from collections.abc import Sequence
from typing import IO, Any

from conveyor.errors import ConveyorError
from conveyor.jsontypes import JSONObject
from conveyor.runlog.base import RunExistsError, RunLog, RunLogStore
from conveyor.runlog.memory import MemoryRunLogStore
from conveyor.runlog.records import Event, RunRecord, event_from_json

#: Appends sent ahead of their answers at most: then the engine reads answers before it
#: sends more (the worker's answers never fill their pipe while the engine writes).
WINDOW = 256
#: The environment variable that names the pipe's two descriptors: ``write,read``.
FDS_VARIABLE = "CONVEYOR_RELAY_FDS"
#: The descriptor of the secrets (JSON) the operator gives the run: read into the engine's
#: memory at start, so no process of the sandbox has them in its initial environment.
SECRETS_VARIABLE = "CONVEYOR_RELAY_SECRETS_FD"


class RelayError(ConveyorError):
    """The trusted side refused a write (over a limit, not this run's); the message says why."""


def _not_dumpable() -> None:
    """The engine of a server run holds the run's secrets: its steps (same user, same
    sandbox) may not read its memory or environment through /proc or ptrace."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(4, 0)  # PR_SET_DUMPABLE, 0


def _take_secrets() -> None:
    """Put the run's secrets into this process's environment (memory only): the secrets
    backend finds them there, and the engine gives each only to the steps declaring it."""
    fd = os.environ.pop(SECRETS_VARIABLE, "")
    if not (fd.isascii() and fd.isdigit()):
        return
    with os.fdopen(int(fd), "rb") as given:
        values = json.loads(given.read() or b"{}")
    os.environ.update({str(k): str(v) for k, v in values.items()})


class RelayRunLogStore(RunLogStore):
    """Records one server run by asking the trusted side to write it (see the module's text)."""

    where = "the server's run log"

    def __init__(self, snapshot: str | None = None, log_prefix: str = "sql:", **_: Any) -> None:
        fds = os.environ.get(FDS_VARIABLE, "")
        try:
            write, read = (int(part) for part in fds.split(","))
        except ValueError:
            raise RelayError(
                f"the relay run log store records server runs only ({FDS_VARIABLE} is not set)"
            ) from None
        _not_dumpable()
        _take_secrets()
        self._out: IO[bytes] = os.fdopen(write, "wb", buffering=0)
        self._in: IO[bytes] = os.fdopen(read, "rb")
        self._lock = threading.Lock()
        #: Answers the worker owes for appends sent and not read back yet.
        self._due = 0
        self._mirror = MemoryRunLogStore()
        self._prefix = log_prefix
        if snapshot and os.path.exists(snapshot):
            self._seed(snapshot)

    def _seed(self, snapshot: str) -> None:
        with open(snapshot, encoding="utf-8") as lines:
            first = lines.readline()
            if not first.strip():
                return
            run = RunRecord.from_json(json.loads(first))
            self._mirror.save_run(run, create=True)
            events = [event_from_json(json.loads(line)) for line in lines if line.strip()]
            self._mirror.append(run.run_id, [e for e in events if e is not None])

    def _send(self, request: JSONObject) -> None:
        """Under the lock: one request line on the pipe (an answer will be due)."""
        self._out.write(json.dumps(request, separators=(",", ":"), default=str).encode() + b"\n")
        self._due += 1

    def _collect(self, keep: int = 0) -> None:
        """Under the lock: read the answers due to appends until ``keep`` remain; the first
        refusal among them is raised (the worker then stops the run)."""
        while self._due > keep:
            self._due -= 1
            self._reply(None)

    def _reply(self, request: JSONObject | None) -> JSONObject:
        answer = self._in.readline()
        if not answer:
            raise RelayError("the server's worker stopped answering (the run is being stopped)")
        reply = json.loads(answer)
        if not isinstance(reply, dict):
            raise RelayError(f"the server's worker answered {type(reply).__name__}, not a JSON object")
        if not reply.get("ok"):
            if reply.get("exists") and request is not None:
                run = request.get("run")
                raise RunExistsError(str(run.get("run_id", "") if isinstance(run, dict) else ""), self.where)
            raise RelayError(str(reply.get("error") or "the server refused a run log write"))
        return reply

    def _ask(self, request: JSONObject) -> JSONObject:
        """Send one request (``op`` and its fields) and return the worker's reply, a JSON
        object with ``ok`` (and what the op answers: ``won``, ``location``), once every
        earlier append has been answered."""
        with self._lock:
            self._collect()
            self._send(request)
            self._due -= 1
            return self._reply(request)

    def save_run(self, run: RunRecord, create: bool = False) -> None:
        self._ask({"op": "save", "create": create, "run": run.to_json()})
        self._mirror.save_run(run)

    def claim(self, run: RunRecord, expected_generation: int) -> bool:
        """Take over the run through the trusted side's store (its one atomic claim)."""
        reply = self._ask({"op": "claim", "expected": expected_generation, "run": run.to_json()})
        won = bool(reply.get("won"))
        if won:
            run.generation = expected_generation + 1
            self._mirror.save_run(run)
        return won

    def append(self, run_id: str, events: Sequence[Event]) -> None:
        """Written on the pipe when this returns: a killed engine loses none of it (the
        worker reads what the pipe holds); in the database once :meth:`sync` returns (the
        store writer calls it for a group of appends, as ``durability: batched`` says)."""
        request: JSONObject = {"op": "append", "run_id": run_id, "events": [e.to_json() for e in events]}
        with self._lock:
            self._send(request)
            self._collect(keep=WINDOW)
        self._mirror.append(run_id, events)

    def sync(self, run_id: str) -> None:
        """Wait until every append sent is in the server's database (or raise why not)."""
        with self._lock:
            self._collect()

    def load(self, run_id: str) -> RunLog:
        return self._mirror.load(run_id)

    def list_runs(self, limit: int = 50) -> list[RunRecord]:
        return self._mirror.list_runs(limit)

    def read_event_lines(self, run_id: str, cursor: Any = None) -> tuple[list[bytes | str], Any]:
        return self._mirror.read_event_lines(run_id, cursor)

    def log_location(self, run_id: str, name: str) -> str:
        return f"{self._prefix}{run_id}/{name}"

    def write_log(self, run_id: str, name: str, text: str) -> str:
        reply = self._ask({"op": "log", "run_id": run_id, "name": name, "text": text})
        return str(reply.get("location") or self.log_location(run_id, name))

    def read_log(self, location: str) -> str:
        return ""  # logs are the trusted side's to serve; nothing in the engine reads them back

    def close(self) -> None:
        for stream in (self._out, self._in):
            with contextlib.suppress(OSError):
                stream.close()
