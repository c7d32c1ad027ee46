"""The engine's own subscribers: the live log follower and the lease keeper (the store
writer, whose failure is the run's, is ``executors.storewriter``).

Each keeps one job that used to live in the engine, beside the traversal: the engine now
only publishes what happened (``executors.stream``).
"""

from __future__ import annotations

import contextlib
import threading

from conveyor.executors.stream import Subscriber
from conveyor.runlog.base import RunLogStore, RunTakenOverError
from conveyor.runlog.records import RunRecord
from conveyor.step.context import StepContext, path_slug

#: Running attempts' output is written out every this many ticks (a second).
LIVE_LOG_TICKS = 4


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
