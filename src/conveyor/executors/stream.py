"""One event stream per run: the engine publishes the run log's own records to subscribers.

What a run does is said once, in the run log's types (``runlog.records``): start, end and
node events, the run record when it is saved, and a step record taken whole from an
earlier attempt on resume. Whoever needs to know (the store writer, the console, the live
log follower, the lease keeper) subscribes to that stream and folds it with the records'
own ``apply``; no second vocabulary, no second fold.

Who may stop a run: only an *essential* subscriber (the store writer). It is called in the
publishing thread, and what it raises is the run's failure: an event that cannot be
recorded must not pass as done. Every other subscriber is called from one dispatcher
thread (events) or the engine's ticker (time), so a slow display does not slow a run, and
one that raises is reported once on stderr, detached, and the run goes on without it.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence

from conveyor.runlog.itemattempt import ItemAttempt, expanded
from conveyor.runlog.records import Event, RunRecord, StepRecord

#: Seconds the dispatcher lets published batches gather before it delivers them.
COALESCE = 0.02
#: Seconds a run's end waits for the other subscribers to take what was published.
CLOSE_WAIT = 10.0

#: What the stream carries: events, the run record when saved, a step reused on resume, and
#: a map item's attempt (its start and end in one record: the essential subscribers get it
#: as it is, the others as its two events).
Published = Event | RunRecord | StepRecord | ItemAttempt


class Subscriber:
    """Receives a run's records as they happen; both methods are optional.

    ``receive`` gets the records published together (a start and its end may come in one
    batch); ``tick`` is called every few tenths of a second with the time, for what is due
    by the clock rather than by an event (flushing, lease renewal, live output).
    """

    #: Whether a failure of this subscriber is the run's (only the store writer's is).
    essential = False
    #: Whether ``receive`` takes a map item's :class:`ItemAttempt` as it is; if not, it gets
    #: the start and end events the record stands for.
    takes_item_attempts = False

    @property
    def name(self) -> str:
        """How a report names it (its class name, unless it says better)."""
        return type(self).__name__

    def receive(self, batch: Sequence[Published]) -> None:
        """Records published together, in the order they happened."""

    def tick(self, now: float) -> None:
        """Called by the engine's ticker; ``now`` is ``time.time()``."""

    def close(self) -> None:
        """The run has ended and every record was delivered."""


def _overrides(subscriber: Subscriber, method: str) -> bool:
    return getattr(type(subscriber), method) is not getattr(Subscriber, method)


def _say(text: str) -> None:
    print(text, file=sys.stderr)


class Stream:
    """Delivers published records to subscribers (see the module's text for who may fail).

    Essential subscribers are called in the publisher's thread, batch by batch; the others
    get the same records, in the same order, from one dispatcher thread started by
    :meth:`start` and drained by :meth:`close` (what was published meanwhile comes in one
    call).
    """

    def __init__(self, subscribers: Iterable[Subscriber], report: Callable[[str], None] = _say) -> None:
        subscribers = tuple(subscribers)
        self._direct = tuple(s for s in subscribers if s.essential and _overrides(s, "receive"))
        # Replaced whole, never changed in place: publishers read them without the lock.
        self._queued = tuple(s for s in subscribers if not s.essential and _overrides(s, "receive"))
        self._ticking = tuple(s for s in subscribers if _overrides(s, "tick"))
        self._all = subscribers
        self._report = report
        self._lock = threading.Lock()
        self._pending: deque[Sequence[Published]] = deque()
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start delivering to the non-essential subscribers (if there are any)."""
        if self._queued and self._thread is None:
            self._thread = threading.Thread(target=self._dispatch, name="conveyor-stream", daemon=True)
            self._thread.start()

    def publish(self, batch: Sequence[Published]) -> None:
        """Give ``batch`` to every subscriber; what an essential one raises goes to the caller."""
        for subscriber in self._direct:
            subscriber.receive(batch)
        if self._queued:
            self._pending.append(batch)
            if not self._wake.is_set():
                self._wake.set()

    def tick(self, now: float) -> None:
        """Give every subscriber that keeps time its tick; an essential one's error is raised."""
        for subscriber in self._ticking:
            if subscriber.essential:
                subscriber.tick(now)
                continue
            try:
                subscriber.tick(now)
            except Exception as exc:  # a subscriber may not break the run: reported, detached
                self._detach(subscriber, exc)

    def close(self) -> None:
        """Deliver what is still pending, stop the dispatcher, and close every subscriber."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(CLOSE_WAIT)
            if self._thread.is_alive():  # a subscriber stuck: the run has ended all the same
                stuck = ", ".join(s.name for s in self._queued)
                self._report(f"conveyor: gave up waiting for {stuck} after {CLOSE_WAIT:g}s")
                self._queued = ()
            self._thread = None
        else:
            self._deliver()
        for subscriber in self._all:
            if subscriber in self._direct or subscriber in self._queued or subscriber in self._ticking:
                try:
                    subscriber.close()
                except Exception as exc:
                    self._detach(subscriber, exc)

    def _dispatch(self) -> None:
        while True:
            self._wake.wait()
            if not self._stopping:
                # Let a burst gather (a map's items end by the thousand): one wake-up per
                # COALESCE, not one per batch, and no lag a person would see.
                time.sleep(COALESCE)
            self._wake.clear()
            self._deliver()
            if self._stopping and not self._pending:
                return

    def _deliver(self) -> None:
        while self._pending:
            # What gathered goes in one call: per-call costs are paid per burst, not per event.
            batch: list[Published] = []
            while self._pending:
                batch.extend(self._pending.popleft())
            plain: list[Published] | None = None
            for subscriber in self._queued:
                given = batch
                if not subscriber.takes_item_attempts:
                    if plain is None:
                        items = any(type(record) is ItemAttempt for record in batch)
                        plain = expanded(batch) if items else batch
                    given = plain
                try:
                    subscriber.receive(given)
                except Exception as exc:  # a subscriber may not break the run: reported, detached
                    self._detach(subscriber, exc)

    def _detach(self, subscriber: Subscriber, exc: Exception) -> None:
        """Stop calling ``subscriber`` and say so, once."""
        with self._lock:
            attached = subscriber in self._queued or subscriber in self._ticking or subscriber in self._direct
            self._queued = tuple(s for s in self._queued if s is not subscriber)
            self._ticking = tuple(s for s in self._ticking if s is not subscriber)
            self._direct = tuple(s for s in self._direct if s is not subscriber)
        if attached:
            self._report(
                f"conveyor: {subscriber.name} failed and was detached ({type(exc).__name__}: {exc}); "
                "the run goes on without it"
            )
