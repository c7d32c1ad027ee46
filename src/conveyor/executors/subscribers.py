"""The engine's own subscribers: the store writer, the live log follower, the lease keeper.

Each keeps one job that used to live in the engine, beside the traversal: the engine now
only publishes what happened (``executors.stream``).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence

from conveyor.executors.stream import Published, Subscriber
from conveyor.runlog.base import RunLogStore, RunTakenOverError
from conveyor.runlog.records import EndEvent, Event, NodeEvent, RunRecord, StartEvent
from conveyor.step.context import StepContext, path_slug

#: A start event is written with its end event, or alone once its step has run this long.
START_DELAY = 0.25
#: Running attempts' output is written out every this many ticks (a second).
LIVE_LOG_TICKS = 4


class StoreWriter(Subscriber):
    """Appends the run's events to its run log: the one subscriber whose failure is the run's.

    Start events wait here and go out with their end event in one write (one append per
    attempt, the hot path of a map); a tick writes those of steps still running after
    START_DELAY, so that ``conveyor runs show`` sees them. What the store raises (OSError
    for a full disk, RunTakenOverError) is raised to the publisher.
    """

    essential = True

    def __init__(self, store: RunLogStore, run_id: str, delay: float = START_DELAY) -> None:
        self.store, self.run_id, self.delay = store, run_id, delay
        self._starts: dict[tuple[str, ...], StartEvent] = {}
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return "the run log writer"

    def receive(self, batch: Sequence[Published]) -> None:
        out: list[Event] = []
        # Under the lock, so that the tick never writes a start after its end.
        with self._lock:
            for record in batch:
                if isinstance(record, StartEvent):
                    self._starts[tuple(record.path)] = record
                elif isinstance(record, EndEvent):
                    start = self._starts.pop(tuple(record.path), None)
                    if start is not None:
                        out.append(start)
                    out.append(record)
                elif isinstance(record, NodeEvent):
                    out.append(record)
            if out:
                self.store.append(self.run_id, out)

    def tick(self, now: float) -> None:
        # A store that cannot be written now (a full disk) is tried again next tick; the
        # steps' own writes say why, if it stays so.
        with self._lock, contextlib.suppress(OSError):
            due = [k for k, e in self._starts.items() if e.t <= now - self.delay]
            if due:
                self.store.append(self.run_id, [self._starts[k] for k in due])
                for k in due:
                    del self._starts[k]

    def flush(self) -> None:
        """Write every start event still waiting (the run is ending with its steps open)."""
        with self._lock:
            pending, self._starts = list(self._starts.values()), {}
            with contextlib.suppress(OSError):
                if pending:
                    self.store.append(self.run_id, pending)


class LiveLogs(Subscriber):
    """Writes out the output so far of attempts still running, every LIVE_LOG_TICKS ticks,
    when it has grown (``conveyor runs logs -f`` and the UI follow it).

    The engine writes an attempt's final output holding :attr:`lock`, once the attempt has
    left ``context.running``: no live write of its partial output can come after it.
    """

    def __init__(self, store: RunLogStore, run_id: str, context: StepContext) -> None:
        self.store, self.run_id, self.context = store, run_id, context
        self.lock = threading.Lock()
        #: Length of the output last written out for each running attempt.
        self._written: dict[tuple[tuple[str, ...], int], int] = {}
        self._ticks = 0

    @property
    def name(self) -> str:
        return "the live log follower"

    def tick(self, now: float) -> None:
        self._ticks += 1
        if self._ticks % LIVE_LOG_TICKS:
            return
        running = self.context.running
        for (path, attempt), sink in list(running.items()):
            text = sink.so_far()
            with self.lock:
                key = (path, attempt)
                if key not in running or not text or self._written.get(key) == len(text):
                    continue  # finished (its final output is written instead), or unchanged
                self._written[key] = len(text)
                with contextlib.suppress(OSError):
                    self.store.write_log(self.run_id, f"{path_slug(list(path))}/attempt-{attempt}.log", text)
        with self.lock:
            for done in [k for k in self._written if k not in running]:
                del self._written[done]


class LeaseKeeper(Subscriber):
    """Renews the run's lease a third of the way through it, while the run goes (the run
    record's ``lease_until``: past it, any host may take the run over). A run taken over by
    another process stops it: the run's own writes raise the error."""

    def __init__(self, store: RunLogStore, run: RunRecord, lease: float) -> None:
        self.store, self.run, self.lease = store, run, lease
        self._over = False

    @property
    def name(self) -> str:
        return "the lease keeper"

    def tick(self, now: float) -> None:
        held = self.run.lease_until
        if self._over or held is None or held - now >= self.lease * 2 / 3:
            return
        self.run.lease_until = now + self.lease
        try:
            self.store.save_run(self.run)
        except OSError:
            self.run.lease_until = held  # renewed next tick, if the store allows
        except RunTakenOverError:
            self.run.lease_until, self._over = held, True
