"""A map item's step, folded compactly: the status, times, attempt and error a run page
shows, kept for each of 100,000 items without their returns, metrics or logs.

:class:`ItemState` is a record type with its own :meth:`ItemState.apply`, like
:class:`~conveyor.runlog.records.StepRecord`, and means the same thing: after the same
events, its fields equal what a step record says (``tests/ui/test_itemfold.py`` checks
it on generated event sequences):

- ``status``: ``record.status``;
- ``start`` and ``end``: the earliest attempt start and the latest attempt end (a node's
  own times when it has no attempts), what the UI draws as the step's span;
- ``error``: the last attempt's error; ``attempt``: the last attempt's number (0: none).

It folds either a typed event or the event as decoded from its JSON line (a dict, read the
way :func:`~conveyor.runlog.records.event_from_json` reads it): a map's events are decoded
by the fast JSON parser and folded without building an event object per line.
"""

from __future__ import annotations

from typing import Any

from conveyor.runlog.records import EndEvent, Event, StartEvent, Status, StepRecord

_STATUSES = {s.value: s for s in Status}
#: One try: [number, start, end, error] (a list: changed in place as its end arrives).
Try = list[Any]


def _status(value: object) -> Status:
    """A recorded status, as ``Status.of`` reads it (a dict lookup: once per item event)."""
    return _STATUSES.get(value, Status.UNKNOWN) if isinstance(value, str) else Status.UNKNOWN


def _number(value: object) -> float | None:
    kind = type(value)  # exact types: a bool is no time
    return float(value) if (kind is float or kind is int) and isinstance(value, int | float) else None


def _int(value: object) -> int:
    return value if type(value) is int and isinstance(value, int) else 0


class ItemState:
    """One map item's step as the UI keeps it (see the module's docstring for what each
    field means); mutable, folded event by event with :meth:`apply`."""

    __slots__ = ("_node", "_tries", "attempt", "end", "error", "start", "status")

    def __init__(self) -> None:
        self.status = Status.RUNNING
        self.start: float | None = None
        self.end: float | None = None
        self.error: str | None = None
        self.attempt = 0
        #: The attempts, in the order they appeared (usually one).
        self._tries: list[Try] = []
        #: A node event's own start and end (composites inside items), else None.
        self._node: list[float | None] | None = None

    def __repr__(self) -> str:
        return (
            f"ItemState({self.status.value}, start={self.start}, end={self.end}, "
            f"attempt={self.attempt}, error={self.error!r})"
        )

    @classmethod
    def of_record(cls, record: StepRecord) -> ItemState:
        """The compact form of a whole step record (stores that read whole runs only)."""
        state = cls()
        state.status = record.status
        state._tries = [[a.attempt, a.start, a.end, a.error] for a in record.attempts]
        if record.start is not None or record.end is not None:
            state._node = [record.start, record.end]
        state._derive()
        return state

    def apply(self, event: Event | dict[str, object]) -> None:
        """Fold one more event (typed, or a dict as its JSON line decodes); anything that
        is not an event is ignored, as ``event_from_json`` ignores it."""
        if isinstance(event, dict):
            kind = event.get("e")
            t = _number(event.get("t")) or 0.0
            if kind == "start":
                self._start(_int(event.get("attempt")), t)
            elif kind == "end":
                error = event.get("error")
                self._end(
                    _int(event.get("attempt")),
                    t,
                    _status(event.get("status", "failed")),
                    _number(event.get("started")),
                    error if isinstance(error, str) else None,
                )
            elif kind == "node":
                self._node_status(_status(event.get("status")), t)
            return
        if isinstance(event, StartEvent):
            self._start(event.attempt, event.t)
        elif isinstance(event, EndEvent):
            self._end(event.attempt, event.t, event.status, event.started, event.error)
        else:
            self._node_status(event.status, event.t)

    def close(self, status: Status, t: float, error: str | None) -> None:
        """Ended by the run's ending (cancelled, interrupted) while still open: the status
        it ended with, its end at ``t`` (never before it began), the ending's reason when
        it has no error of its own (see ``runlog.endings``)."""
        self.status = status
        self.end = max(t, self.start or t)
        self.error = self.error or error

    # --- the fold, as StepRecord.apply does it ----------------------------------------------

    def _start(self, attempt: int, t: float) -> None:
        self._tries.append([attempt, t, None, None])
        self.status = Status.RUNNING
        self._derive()

    def _end(self, attempt: int, t: float, status: Status, started: float | None, error: str | None) -> None:
        tries = self._tries
        found = None
        for entry in reversed(tries):
            if entry[0] == attempt:
                found = entry
                break
        if found is None:
            found = [attempt, started, None, None]
            tries.append(found)
        if started is not None:
            found[1] = started
        found[2], found[3] = t, error
        if found is tries[-1]:  # a late end of an older attempt leaves the step as it is
            self.status = status
        self._derive()

    def _node_status(self, status: Status, t: float) -> None:
        self.status = status
        node = self._node
        if node is None:
            node = self._node = [t, None]
        if status is not Status.RUNNING:
            node[1] = t
        self._derive()

    def _derive(self) -> None:
        """start, end, error and attempt from the tries (one, nearly always: kept cheap)."""
        tries = self._tries
        if len(tries) == 1:
            only = tries[0]
            starts = [only[1]] if only[1] else []
            ends = [only[2]] if only[2] else []
        else:
            starts = [e[1] for e in tries if e[1]]
            ends = [e[2] for e in tries if e[2]]
        node = self._node
        if not starts and node is not None and node[0]:
            starts = [node[0]]
        if not ends and node is not None and node[1]:
            ends = [node[1]]
        self.start = min(starts) if starts else None
        self.end = max(ends) if ends else None
        if tries:
            last = tries[-1]
            self.attempt, self.error = last[0], last[3]
        else:
            self.attempt, self.error = 0, None
