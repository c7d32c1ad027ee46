"""How a run's ending closes what it left open.

A run can end with steps still open: cancelled on the server (its process killed), killed
with SIGKILL, its worker or machine lost, interrupted by the user. Their start events have
no end event, and a map, parallel or loop has no closing node event. Left so, they read as
``running`` for ever, their durations growing. Every reader and writer closes them the
same way, here:

- writers that know the ending (a server cancelling a run, an engine stopped by the user,
  a retry taking over an interrupted run) append the closing events :func:`close` returns,
  so the store itself says how each step ended;
- readers (``runs show``, the API, the UI) :func:`settle` what they load, so a run whose
  process died without a word (``kill -9``, a lost worker) shows its open steps with the
  run's ending, their durations fixed at the run's last sign of life.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from conveyor.runlog import base
from conveyor.runlog.base import RunLog, RunLogStore, effective_status
from conveyor.runlog.records import ATTEMPTED_TYPE, EndEvent, Event, NodeEvent, RunRecord, Status, StepRecord

#: Run statuses after which nothing that is open will end by itself.
ENDED = frozenset({Status.CANCELLED, Status.INTERRUPTED, Status.FAILED, Status.SUCCEEDED})

_WHY = {
    Status.CANCELLED: "cancelled: the run was cancelled while this step ran",
    Status.INTERRUPTED: "interrupted: the run's process stopped (killed, crashed or its host lost) "
    "while this step ran",
}


@dataclass(frozen=True, slots=True)
class Ending:
    """What the open steps of an ended run close as (cancelled or interrupted), and when."""

    status: Status
    t: float

    @property
    def error(self) -> str:
        """The message an attempt closed by this ending carries."""
        return _WHY[self.status]


def last_seen(records: Iterable[StepRecord]) -> float | None:
    """The latest time any step recorded (a start or an end): the run's last sign of life."""
    latest: float | None = None
    for record in records:
        for t in (record.start, record.end, *(x for a in record.attempts for x in (a.start, a.end))):
            if isinstance(t, int | float) and (latest is None or t > latest):
                latest = float(t)
    return latest


def ending_of(run: RunRecord, seen: float | None = None, now: float | None = None) -> Ending | None:
    """How ``run`` ended, for its open steps; None while it may still be running.

    The time is the run's recorded end; for a run that died without writing one (its
    lease expired, its process gone), its last sign of life: its last heartbeat (the lease
    minus its length) or ``seen``, its last recorded event, whichever is later, never after
    ``now``. That time does not move, so durations read from it do not grow.
    """
    now = time.time() if now is None else now
    status = effective_status(run, now)
    if status not in ENDED:
        return None
    closing = Status.CANCELLED if status is Status.CANCELLED else Status.INTERRUPTED
    if run.ended_at is not None:
        return Ending(closing, run.ended_at)
    signs = [t for t in (seen, run.started_at) if t is not None]
    if run.lease_until is not None:
        signs.append(run.lease_until - base.LEASE_SECONDS)
    return Ending(closing, min(now, max(signs)) if signs else now)


def run_end(run: RunRecord, seen: float | None = None, now: float | None = None) -> float | None:
    """When ``run`` ended (its record's end, or :func:`ending_of`'s time); None if it has not."""
    if run.ended_at is not None:
        return run.ended_at
    ending = ending_of(run, seen, now)
    return ending.t if ending is not None else None


def close(records: Iterable[StepRecord], ending: Ending) -> list[Event]:
    """Close every open attempt and running composite of ``records`` in place; return the
    events that say so (to append, when the caller writes the ending to the store).

    An attempt ends with the ending's status and message, no earlier than it started; a
    step whose last attempt is open ends with it; a composite or stub still running gets a
    node event. An older attempt left open by an earlier driver is closed without changing
    the status its step has since taken.
    """
    events: list[Event] = []
    for record in list(records):
        own: list[Event] = []
        for attempt in record.attempts:
            if attempt.status is Status.RUNNING:
                t = max(ending.t, attempt.start or ending.t)
                own.append(
                    EndEvent(
                        list(record.path),
                        attempt.attempt,
                        t,
                        ending.status,
                        started=attempt.start,
                        error=ending.error,
                    )
                )
        if record.status is Status.RUNNING and not own:
            t = max(ending.t, record.start or ending.t)
            own.append(NodeEvent(list(record.path), record.type or ATTEMPTED_TYPE, ending.status, t))
        for event in own:
            record.apply(event)
        events.extend(own)
    return events


def settle(log: RunLog, now: float | None = None) -> RunLog:
    """``log`` with what its ended run left open closed in place (for readers: nothing is
    written). Returns ``log``; the events that closed it are in :attr:`RunLog.closed`."""
    ending = ending_of(log.run, last_seen(log.steps.values()), now)
    if ending is not None:
        log.closed = close(log.steps.values(), ending)
    return log


def end_run(store: RunLogStore, log: RunLog, status: Status, error: str | None = None) -> list[Event]:
    """Record that ``log``'s run ended with ``status`` (cancelled, interrupted) now: its open
    steps are closed in the store first, then its record says how it ended. Returns the
    closing events written."""
    run = log.run
    run.status, run.ended_at, run.lease_until = status, time.time(), None
    if error is not None:
        run.error = error
    events = close(log.steps.values(), Ending(_closing(status), run.ended_at))
    if events:
        store.append(run.run_id, events)
    store.save_run(run)
    return events


def _closing(status: Status) -> Status:
    return Status.CANCELLED if status is Status.CANCELLED else Status.INTERRUPTED
