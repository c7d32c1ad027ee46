"""The run logs the API's status polling reads, folded once and followed.

A client waiting for a run (``conveyor submit --wait``, the benchmarks, a script) reads
``GET /api/v1/runs/{id}`` again and again, each answer carrying every step. Reading the run
whole each time decodes and folds all its events: for a 1,000-item map, about 50 ms of the
API's CPU a poll, most of what a served map cost beyond running it. Here the steps folded
for a run are kept, with the cursor of the last event read; a poll reads the run's record
and the events appended since, folds those in, and encodes again only the steps they
changed. Nothing is cached that the store could contradict: the record is read every time,
events are only ever appended (in the order they committed, for one run), and a copy that
:func:`~conveyor.runlog.endings.settle` changed (an ended run's open steps closed for the
reader) is not kept. A few runs are kept, the most recently read.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from conveyor.jsontypes import JSONObject
from conveyor.runlog.base import RunLog, RunLogStore
from conveyor.runlog.codec import decode_lines
from conveyor.runlog.endings import settle
from conveyor.runlog.records import StepRecord, event_from_json, fold_into

#: Runs kept folded (each holds its steps: a 100,000-item map is tens of megabytes).
KEPT = 8


@dataclass
class _Folded:
    """One run's steps as folded so far, and their JSON as last encoded."""

    started_at: float | None
    cursor: Any = None
    steps: dict[tuple[str, ...], StepRecord] = field(default_factory=dict)
    encoded: dict[tuple[str, ...], JSONObject] = field(default_factory=dict)
    torn: int = 0


class FollowedRuns:
    """Settled run logs of ``store``, read incrementally (see the module's text)."""

    def __init__(self, store: RunLogStore, kept: int = KEPT) -> None:
        self.store, self.kept = store, kept
        self._runs: OrderedDict[str, _Folded] = OrderedDict()
        self._lock = threading.Lock()

    def read(self, run_id: str) -> tuple[RunLog, list[JSONObject]]:
        """The run's log, settled, as ``settle(store.load(run_id))`` reads it, and its
        steps' JSON in order; RunNotFoundError if there is no such run."""
        run = self.store.load_record(run_id)
        with self._lock:
            folded = self._runs.pop(run_id, None)
            if folded is None or folded.started_at != run.started_at:  # new, or another run of that id
                folded = _Folded(run.started_at)
            got = self.store.read_event_lines(run_id, folded.cursor)
            if got is None:  # a store that reads whole runs only
                log = settle(self.store.load(run_id))
                return log, [record.to_json() for record in log.steps.values()]
            lines, folded.cursor = got
            skipped = [0]
            events = (e for e in map(event_from_json, decode_lines(lines, skipped)) if e is not None)
            for key in fold_into(folded.steps, events):
                folded.encoded.pop(key, None)
            folded.torn += skipped[0]
            log = settle(RunLog(run, folded.steps, folded.torn))
            if log.closed:  # settle closed open steps in this copy: it is not the store's
                return log, [record.to_json() for record in log.steps.values()]
            self._runs[run_id] = folded
            while len(self._runs) > self.kept:
                self._runs.popitem(last=False)
            steps = []
            for key, record in log.steps.items():
                encoded = folded.encoded.get(key)
                if encoded is None:
                    encoded = folded.encoded[key] = record.to_json()
                steps.append(encoded)
            return log, steps
