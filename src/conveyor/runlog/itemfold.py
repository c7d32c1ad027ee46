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
_RUNNING, _UNKNOWN = Status.RUNNING, Status.UNKNOWN
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
    field means); mutable, folded event by event with :meth:`apply`.

    The last attempt lives in the fields themselves (``attempt``, ``error``, and its own
    start and end); older attempts, rare, in a list: a one-attempt item costs no list."""

    __slots__ = ("_end", "_has", "_node", "_older", "_start", "attempt", "end", "error", "start", "status")

    def __init__(self) -> None:
        self.status = Status.RUNNING
        self.start: float | None = None
        self.end: float | None = None
        self.error: str | None = None
        self.attempt = 0
        #: Whether there is an attempt; the last one's own start and end.
        self._has = False
        self._start: float | None = None
        self._end: float | None = None
        #: Older attempts, [number, start, end, error] in the order they appeared, or None.
        self._older: list[Try] | None = None
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
        if record.attempts:
            *older, last = record.attempts
            state._older = [[a.attempt, a.start, a.end, a.error] for a in older] or None
            state._has, state.attempt, state.error = True, last.attempt, last.error
            state._start, state._end = last.start, last.end
        if record.start is not None or record.end is not None:
            state._node = [record.start, record.end]
        state._derive()
        state.status = record.status
        return state

    def apply(self, event: Event | dict[str, object]) -> None:
        """Fold one more event (typed, or a dict as its JSON line decodes); anything that
        is not an event is ignored, as ``event_from_json`` ignores it."""
        if isinstance(event, dict):
            self.apply_json(event)
        elif isinstance(event, StartEvent):
            self._began(event.attempt, event.t)
        elif isinstance(event, EndEvent):
            self._ended(event.attempt, event.t, event.status, event.started, event.error)
        else:
            self._node_status(event.status, event.t)

    def apply_json(self, event: dict[str, object]) -> None:
        """:meth:`apply` for an event as its JSON line decodes: a map's hot path (two
        events per item), so the common cases (an item's first start, the end of its one
        attempt) are written out inline."""
        get = event.get
        kind, t = get("e"), get("t")
        if type(t) is not float:
            t = float(t) if type(t) is int and isinstance(t, int) else 0.0
        if kind == "start":
            attempt = get("attempt")
            attempt = attempt if type(attempt) is int else 0
            if not self._has and self._node is None:  # an item's first attempt
                self._has, self.attempt, self._start, self.status = True, attempt, t, _RUNNING
                self.start = t or None
            else:
                self._began(attempt, t)
        elif kind == "end":
            attempt, error, started = get("attempt"), get("error"), get("started")
            status = get("status", "failed")
            attempt = attempt if type(attempt) is int else 0
            status = _STATUSES.get(status, _UNKNOWN) if type(status) is str else _UNKNOWN
            if type(started) is not float:
                started = float(started) if type(started) is int and isinstance(started, int) else None
            error = error if type(error) is str else None
            if self._has and self.attempt == attempt and self._older is None and self._node is None:
                if started is not None:  # the end of its one attempt
                    self._start = started
                self._end, self.error, self.status = t, error, status
                self.start, self.end = self._start or None, t or None
            else:
                self._ended(attempt, t, status, started, error)
        elif kind == "node":
            self._node_status(_status(get("status")), t)

    def close(self, status: Status, t: float, error: str | None) -> None:
        """Ended by the run's ending (cancelled, interrupted) while still open: the status
        it ended with, its end at ``t`` (never before it began), the ending's reason when
        it has no error of its own (see ``runlog.endings``)."""
        self.status = status
        self.end = max(t, self.start or t)
        self.error = self.error or error

    # --- the fold, as StepRecord.apply does it ----------------------------------------------

    def _push(self) -> None:
        """The last attempt becomes an older one (another comes after it)."""
        if self._has:
            older = self._older
            if older is None:
                older = self._older = []
            older.append([self.attempt, self._start, self._end, self.error])

    def _began(self, attempt: int, t: float) -> None:
        self._push()
        self._has, self.attempt, self.error, self._start, self._end = True, attempt, None, t, None
        self.status = Status.RUNNING
        self._derive()

    def _ended(
        self, attempt: int, t: float, status: Status, started: float | None, error: str | None
    ) -> None:
        if not self._has or self.attempt != attempt:
            older = next((e for e in reversed(self._older or ()) if e[0] == attempt), None)
            if older is not None:  # a late end of an older attempt leaves the step as it is
                if started is not None:
                    older[1] = started
                older[2], older[3] = t, error
                self._derive()
                return
            self._push()
            self._has, self.attempt, self._start = True, attempt, started
        elif started is not None:
            self._start = started
        self._end, self.error, self.status = t, error, status
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
        """start and end: the earliest attempt start, the latest attempt end (the node's own
        without any). One attempt and no node events, nearly always: kept cheap."""
        if self._older is None and self._node is None:
            self.start = self._start or None
            self.end = self._end or None
            return
        tries = [*(self._older or ()), [self.attempt, self._start, self._end]] if self._has else []
        starts = [e[1] for e in tries if e[1]]
        ends = [e[2] for e in tries if e[2]]
        node = self._node
        if not starts and node is not None and node[0]:
            starts = [node[0]]
        if not ends and node is not None and node[1]:
            ends = [node[1]]
        self.start = min(starts) if starts else None
        self.end = max(ends) if ends else None
