"""The store writer: the one subscriber whose failure is the run's, at the store's durability.

It appends the run's events to its run log, one append per attempt (the hot path of a
map): the engine publishes an attempt's start with its end, and this writes the two
together. A start published alone (by the engine's ticker, for an attempt still running)
waits here for its end; a tick writes those of steps still running after ``delay``, so
that ``conveyor runs show`` sees them.

When the events are safe is the store's ``durability`` (``runlog.base.DURABILITIES``):
``strict`` appends and syncs before the publisher goes on; ``batched`` appends before the
publisher goes on and a background thread syncs what was appended, one ``fsync`` for
everything written meanwhile (group commit); ``relaxed`` gathers events and the background
thread appends them, one write per group. A map item's cache hit ran nothing: under
``batched`` it is gathered and written in groups as under ``relaxed`` (a kill loses no
execution, and a hit lost is looked up again on resume). What the store raises in the background (a full
disk, :class:`~conveyor.runlog.base.RunTakenOverError`) is raised to the next publisher,
and by :meth:`StoreWriter.drain` at the run's end: it is the run's failure either way.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence

from conveyor.executors.stream import Published, Subscriber
from conveyor.runlog.base import RunLogStore
from conveyor.runlog.itemattempt import ItemAttempt, expanded
from conveyor.runlog.records import EndEvent, Event, NodeEvent, StartEvent

#: A start event is written with its end event, or alone once its step has run this long.
START_DELAY = 0.25
#: ``batched``: seconds the appends of a group gather before their one ``fsync``.
BATCHED_WINDOW = 0.01
#: ``relaxed``: seconds a group of events gathers before its write.
RELAXED_WINDOW = 0.05
#: ``relaxed``: a group this large is written at once.
RELAXED_GROUP = 4096


class StoreWriter(Subscriber):
    """Appends the run's events to its run log (see the module's text)."""

    essential = True

    def __init__(self, store: RunLogStore, run_id: str, delay: float = START_DELAY) -> None:
        self.store, self.run_id, self.delay = store, run_id, delay
        self.durability = store.durability
        self._starts: dict[tuple[str, ...], StartEvent] = {}
        # Guards the fields below; writes happen under it (strict, batched) or under _io.
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        #: One background write at a time, in the order the groups were taken (relaxed).
        self._io = threading.Lock()
        self._queued: list[Event | ItemAttempt] = []
        #: Cache hits taken by the background thread and not yet appended (batched): a
        #: direct write waits for them (``_landed``), so that a map's end follows its hits.
        self._in_flight = False
        self._landed = threading.Condition(self._lock)
        self._unsynced = False
        self._failure: BaseException | None = None
        self._closing = False
        self._thread: threading.Thread | None = None
        self._syncs = type(store).sync is not RunLogStore.sync
        #: Whether the store writes an ItemAttempt itself (else it gets the two events).
        self._items = store.takes_item_attempts
        if self.durability == "batched" and self._syncs:
            store.keep_fence(run_id)  # every append is synced within BATCHED_WINDOW

    @property
    def name(self) -> str:
        return "the run log writer"

    def receive(self, batch: Sequence[Published]) -> None:
        if len(batch) == 1 and type(batch[0]) is ItemAttempt and self.durability != "relaxed":
            self._item(batch[0])
            return
        first, last = (batch[0], batch[-1]) if len(batch) == 2 else (None, None)
        # Under the lock, so that the tick never writes a start after its end.
        with self._lock:
            if self._failure is not None:
                self._raise_failure()
            if isinstance(first, StartEvent) and isinstance(last, EndEvent) and first.path is last.path:
                self._write([first, last])  # an attempt published whole (the engine's way)
                out = True
            else:
                out = self._pair(batch)
        if out and self.durability == "strict" and self._syncs:
            self.store.sync(self.run_id)

    def _item(self, item: ItemAttempt) -> None:
        """A map item's attempt (the lean path), appended at once (``strict``, ``batched``).
        Its start is its own or was written already; if the ticker published it and it
        waits here, the two go together, after it."""
        if item.info and self.durability == "batched" and item.opened and self._items:
            # A cache hit ran nothing: written with the hits gathered meanwhile, one write
            # per group (a kill loses none that ran; a hit lost is looked up again).
            with self._lock:
                if self._failure is not None:
                    self._raise_failure()
                first = not self._queued
                self._queued.append(item)
                self._background()
                if first or len(self._queued) >= RELAXED_GROUP:
                    self._wake.notify()
            return
        if self._failure is not None or not item.opened or not self._items:
            with self._lock:
                if self._failure is not None:
                    self._raise_failure()
                self._pair([item])
        else:
            self.store.append(self.run_id, (item,))  # type: ignore[arg-type]  # the store takes them
            if self.durability == "batched":
                if self._syncs and not self._unsynced:
                    with self._lock:
                        self._unsynced = True  # the first append since the last fsync wakes the thread
                        self._background()
                        self._wake.notify()
                return
        if self.durability == "strict" and self._syncs:
            self.store.sync(self.run_id)

    def _pair(self, batch: Sequence[Published]) -> bool:
        """Under the lock: hold starts, write each end with its start, and node events."""
        out: list[Event | ItemAttempt] = []
        for record in batch:
            if type(record) is ItemAttempt:  # its start was published alone, by the ticker
                start = self._starts.pop(tuple(record.path), None)
                if start is not None:
                    out.append(start)
                out.append(record)
            elif isinstance(record, StartEvent):
                self._starts[tuple(record.path)] = record
            elif isinstance(record, EndEvent):
                start = self._starts.pop(tuple(record.path), None)
                if start is not None:
                    out.append(start)
                out.append(record)
            elif isinstance(record, NodeEvent):
                out.append(record)
        if out:
            self._write(out)
        return bool(out)

    def _write(self, events: list[Event | ItemAttempt]) -> None:
        """Under the lock: append now, or queue for the background thread (relaxed)."""
        while self._in_flight:
            self._landed.wait()
        if not self._items:
            events = list(expanded(events))
        elif self._queued and self.durability != "relaxed":
            # Cache hits gathered (batched) go first: a map's end is never written before
            # its items, nor a later step's events before an earlier one's.
            events = [*self._queued, *events]
            self._queued = []
        if self.durability == "relaxed":
            first = not self._queued
            self._queued.extend(events)
            self._background()
            if first or len(self._queued) >= RELAXED_GROUP:
                # A group starts (the thread then waits RELAXED_WINDOW for more), or is full.
                self._wake.notify()
            return
        self.store.append(self.run_id, events)  # type: ignore[arg-type]  # items only to a store that takes them
        if self.durability == "batched" and self._syncs and not self._unsynced:
            self._unsynced = True  # the first append since the last fsync wakes the thread
            self._background()
            self._wake.notify()

    def _background(self) -> None:
        """Start the background thread (under the lock), once."""
        if self._thread is None and not self._closing:
            self._thread = threading.Thread(target=self._run, name="conveyor-store-writer", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                while not (self._queued or self._unsynced or self._closing):
                    self._wake.wait()
                if self._closing:
                    return  # drain() does what is left, in the caller's thread
                if self._queued and len(self._queued) < RELAXED_GROUP:
                    self._wake.wait(RELAXED_WINDOW)  # let a group gather
                elif self._unsynced:
                    self._wake.wait(BATCHED_WINDOW)  # one fsync for what comes meanwhile
            try:
                if self.durability == "relaxed":
                    self._write_queued()
                else:
                    with self._lock:  # cache hits of map items, gathered (batched): written
                        hits, self._queued = self._queued, []  # outside the lock (items go on
                        self._in_flight = bool(hits)  # queueing), before any direct write
                    if hits:
                        try:
                            self.store.append(self.run_id, hits)  # type: ignore[arg-type]
                        finally:
                            with self._lock:
                                self._in_flight = False
                                self._landed.notify_all()
                    with self._lock:
                        self._unsynced = False
                    self.store.sync(self.run_id)
            except BaseException as exc:  # raised to the next publisher, and by drain()
                with self._lock:
                    self._failure = self._failure or exc
                return

    def _write_queued(self) -> None:
        with self._io:
            with self._lock:
                events, self._queued = self._queued, []
            if events:
                self.store.append(self.run_id, events)  # type: ignore[arg-type]  # as above

    def _raise_failure(self) -> None:
        """Under the lock: what the background thread met, raised once to a publisher."""
        failure, self._failure = self._failure, None
        if failure is not None:
            raise failure

    def tick(self, now: float) -> None:
        # A store that cannot be written now (a full disk) is tried again next tick; the
        # steps' own writes say why, if it stays so.
        with self._lock, contextlib.suppress(OSError):
            due = [k for k, e in self._starts.items() if e.t <= now - self.delay]
            if due:
                self._write([self._starts[k] for k in due])
                for k in due:
                    del self._starts[k]

    def flush(self) -> None:
        """Write every start event still waiting (the run is ending with its steps open),
        after what was queued."""
        with self._lock:
            pending, self._starts = list(self._starts.values()), {}
        with contextlib.suppress(OSError):
            self._write_queued()
            with self._io:
                if pending:
                    self.store.append(self.run_id, pending)

    def drain(self) -> None:
        """Everything published is written, and synced as the durability says; what the
        store raised meanwhile is raised here (the run's end must not pass as recorded)."""
        with self._lock:
            self._closing = True
            self._wake.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()
        self._write_queued()
        if self._syncs and self.durability != "relaxed":
            with self._lock:
                self._unsynced = False  # synced here: a later append wakes a new thread
            self.store.sync(self.run_id)
        with self._lock:
            self._closing, self._thread = False, None
            self._raise_failure()

    def close(self) -> None:
        """The stream has ended: stop the background thread (what is left was drained)."""
        with self._lock:
            self._closing = True
            self._wake.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()
