"""The run log interface, and how a stored run is read back.

A run is a small record (rewritten atomically when its status changes) plus an append-only
stream of step events. Appending keeps the cost of recording a step constant, however long
the run: the log is never rewritten whole per step. Stores take and give the typed records
of :mod:`conveyor.runlog.records`; JSON is their own business.
"""

from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, get_args

from conveyor.errors import EXIT_FAILED, ConveyorError
from conveyor.runlog.records import Attempt, Event, RunRecord, Status, StepRecord


class RunExistsError(ConveyorError):
    """A run with this id exists already: a run id names exactly one run."""

    def __init__(self, run_id: str, where: str) -> None:
        super().__init__(f"run '{run_id}' already exists in {where}")
        self.run_id = run_id
        self.hint = f"resume it with: conveyor retry {run_id}, or choose another --run-id"


class CorruptRunError(ConveyorError):
    """A run's record cannot be read (cut short, edited by hand, not a run record)."""

    def __init__(self, run_id: str, where: str, reason: str) -> None:
        super().__init__(f"the record of run '{run_id}' in {where} cannot be read: {reason}")
        self.hint = "the other runs are unaffected; restore the file from a backup or remove the run"


class RunNotFoundError(ConveyorError, KeyError):
    """No run with this id in the store."""

    hint = "list runs with: conveyor runs list -c CONFIG"

    def __str__(self) -> str:
        return f"no run '{self.args[0]}' in {self.args[1] if len(self.args) > 1 else 'the run log'}"


class RunLogUnwritable(ConveyorError):
    """The run log cannot be written (a full disk, a quota, a read-only or lost store): the
    run stops there, with the cause named, and resumes with ``retry`` once it is fixed."""

    exit_code = EXIT_FAILED

    def __init__(self, run_id: str, what: str, exc: OSError) -> None:
        super().__init__(f"run '{run_id}' stopped: {os_cause(exc)} while {what}")
        self.hint = f"once that is fixed, resume it with: conveyor retry {run_id}"


def os_cause(exc: OSError) -> str:
    """What the system said, without Python's wrapping ("No space left on device")."""
    return exc.strerror or str(exc) or type(exc).__name__


class RunLogBusyError(ConveyorError):
    """A claim could not take the run's log: its driver holds it and has not let go (a
    driver stopped with Ctrl-Z or ``kill -STOP`` holds it until it goes on)."""

    exit_code = EXIT_FAILED

    def __init__(self, run_id: str, where: str, waited: float) -> None:
        super().__init__(
            f"run '{run_id}' in {where}: its driver holds the run log and did not let go in "
            f"{waited:g}s, so the run was not taken over"
        )
        self.run_id = run_id
        self.hint = (
            "its driver may be stopped (Ctrl-Z, kill -STOP): let it go on (fg, kill -CONT) or end it, "
            "then retry"
        )


class RunTakenOverError(ConveyorError):
    """This process drove a run that another has since taken over (a retry after its lease
    expired, ``--force``, the server's reclaim): the fence stops it writing to the run."""

    exit_code = EXIT_FAILED

    def __init__(self, run_id: str, where: str, held: int, current: int | None) -> None:
        now = "" if current is None else f", it is now at {current}"
        super().__init__(
            f"run '{run_id}' in {where} was taken over by another process (this one held generation "
            f"{held}{now}): this process stops writing to it"
        )
        self.run_id = run_id
        self.hint = f"the run goes on where it was taken over; see: conveyor runs show {run_id}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


#: How long a run's lease lasts after each heartbeat of its driver (seconds).
LEASE_SECONDS = float(os.environ.get("CONVEYOR_LEASE_SECONDS", "15"))


def effective_status(run: RunRecord, now: float | None = None) -> Status:
    """A run marked running whose lease has expired, or whose process on this host is gone,
    was interrupted (killed, crashed, its machine lost): it can be resumed from any host."""
    if run.status is not Status.RUNNING:
        return run.status
    if run.lease_until is not None and (now or time.time()) > run.lease_until:
        return Status.INTERRUPTED
    if run.pid is not None and run.host == os.uname().nodename and not _pid_alive(run.pid):
        return Status.INTERRUPTED
    return run.status


@dataclass
class RunLog:
    """One run as read back: its record and its steps, keyed by path."""

    run: RunRecord
    steps: dict[tuple[str, ...], StepRecord] = field(default_factory=dict)
    #: Event lines that could not be read (cut short by a crash mid-write) and were skipped.
    torn: int = 0
    #: Events that closed, in this copy only, what the run's ending left open (see
    #: ``runlog.endings.settle``); a writer taking the run over appends them.
    closed: list[Event] = field(default_factory=list)

    @property
    def status(self) -> Status:
        return effective_status(self.run)

    def step(self, path: Sequence[str]) -> StepRecord | None:
        return self.steps.get(tuple(path))

    def succeeded(self, path: Sequence[str]) -> Attempt | None:
        """The succeeded attempt recorded for ``path``, if any (what resume reuses)."""
        record = self.steps.get(tuple(path))
        if record is not None and record.status is Status.SUCCEEDED and record.attempts:
            return record.attempts[-1]
        return None


#: When the events of a run are safe, as a store's ``durability`` says (docs/reference/config.md;
#: the SQL stores' ways are in ``runlog.sqlite`` and ``runlog.sql``):
#:
#: - ``strict``: each event is written and on disk (``fsync``) before the step goes on;
#: - ``batched`` (the default): each event is written before the step goes on, so a killed
#:   process loses nothing; what was written is put on disk by one ``fsync`` per group,
#:   within a few milliseconds (a power cut loses at most those);
#: - ``relaxed``: events are gathered in the process and written in groups, one write per
#:   group within 50 ms, and the operating system decides when they reach the disk: a
#:   killed process loses the last group, whose map items then run again on retry.
Durability = Literal["strict", "batched", "relaxed"]
DURABILITIES: tuple[Durability, ...] = get_args(Durability)


class RunLogStore(ABC):
    """Where runs are recorded. Stores are found by ``type`` name (entry points).

    Every executor records through this interface, so a run recorded by a laptop, a Dask
    driver, a server worker or an Argo pod reads back the same from any of them.
    """

    #: A human description of where the store keeps runs, for messages.
    where: str = "the run log"
    #: When what a run records is safe (see :data:`DURABILITIES`); stores that take a
    #: ``durability`` setting change it.
    durability: Durability = "batched"
    #: Whether ``append`` takes a map item's :class:`~conveyor.runlog.itemattempt.ItemAttempt`
    #: as it is (the file store writes it straight to text); others get its two events.
    takes_item_attempts: ClassVar[bool] = False

    @abstractmethod
    def save_run(self, run: RunRecord, create: bool = False) -> None:
        """Replace the run record (small; atomic). With ``create``, make a new run instead,
        atomically: RunExistsError if any run, or any trace of one, has this id. A record
        whose ``generation`` is behind the store's is refused (:class:`RunTakenOverError`):
        its writer was taken over."""

    @abstractmethod
    def append(self, run_id: str, events: Sequence[Event]) -> None:
        """Append step events; durable once this returns, even if the process is killed.
        Refused (:class:`RunTakenOverError`) when the run was claimed past the generation
        this instance saved or claimed it with."""

    @abstractmethod
    def load(self, run_id: str) -> RunLog:
        """Read a run back; raise RunNotFoundError if there is none."""

    @abstractmethod
    def list_runs(self, limit: int = 50) -> list[RunRecord]:
        """Run records, newest first."""

    @abstractmethod
    def claim(self, run: RunRecord, expected_generation: int) -> bool:
        """Take over ``run.run_id`` for the process described by ``run`` (its pid, host and
        lease), if the run's generation is still ``expected_generation``: one atomic
        compare-and-set in the store. On success ``run`` is saved with generation
        ``expected_generation + 1`` and this store instance fences every later write of the
        run (:class:`RunTakenOverError` once someone else claims it); False if another taker
        got there first. Of any number of concurrent takers expecting the same generation,
        exactly one wins. RunNotFoundError if there is no such run."""

    def _hold(self, run_id: str, generation: int) -> None:
        """Remember the generation this instance writes ``run_id`` under (for the fence)."""
        vars(self).setdefault("_held_generations", {})[run_id] = generation

    def _held(self, run_id: str) -> int | None:
        """The generation this instance last saved or claimed ``run_id`` with; None if it
        never did (a pod appending events, a reader): such writes are not fenced."""
        held: dict[str, int] = vars(self).get("_held_generations", {})
        return held.get(run_id)

    def keep_fence(self, run_id: str) -> None:  # noqa: B027 - optional hook
        """The caller will :meth:`sync` within milliseconds of every append of ``run_id``:
        a store whose appends take a lock against takeovers may keep it between them (the
        file store). Others ignore it."""

    def sync(self, run_id: str) -> None:  # noqa: B027 - optional hook
        """Make what was appended to ``run_id`` survive a power cut (``fsync``). Stores
        whose appends are on disk when they return (databases) keep this no-op."""

    def load_record(self, run_id: str) -> RunRecord:
        """The run's record alone (small), without its events."""
        return self.load(run_id).run

    def read_event_lines(self, run_id: str, cursor: Any = None) -> tuple[list[bytes | str], Any] | None:
        """The JSON lines of the events appended since ``cursor`` (None: from the start),
        and the cursor for the next call: a viewer following a run decodes and folds only
        what is new (and may decode fast what it only counts). None if this store cannot
        read part of a run (then :meth:`load` reads it whole)."""
        return None

    def log_location(self, run_id: str, name: str) -> str:
        """Where :meth:`write_log` keeps ``name`` of ``run_id`` (known before the attempt
        ends, so that its output can be followed while it runs)."""
        return f"{run_id}/{name}"

    @abstractmethod
    def write_log(self, run_id: str, name: str, text: str) -> str:
        """Keep an attempt's captured output; return where it is (:meth:`log_location`)."""

    @abstractmethod
    def read_log(self, location: str) -> str:
        """Read back captured output written by :meth:`write_log`."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release files or connections."""
