"""A run as the UI shows it, kept up to date by folding only the events appended since the
last look (``RunLogStore.read_events``): following a live run costs what changed.

Map items and loop iterations are summarised, never listed whole: each step inside a map is
folded compactly (:class:`~conveyor.runlog.itemfold.ItemState`: status, times, attempt and
error) and counted per status under its *pattern* path (item indices as ``*``), counts kept
up to date event by event. The run page therefore has the same size for a map of 10 or
100,000 items. What the pages read of the fold is :class:`~conveyor.ui.runpage.RunPage`.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from typing import Any

from pydantic import ValidationError

from conveyor.runlog.base import RunLogStore
from conveyor.runlog.endings import Ending, close, ending_of, last_seen
from conveyor.runlog.itemfold import ItemState
from conveyor.runlog.records import Attempt, Event, RunRecord, Status, StepRecord, event_from_json
from conveyor.spec import kindreg
from conveyor.spec.models import DEFAULT_TYPE, Graph, Pipeline
from conveyor.ui.failures import failures, item_detail
from conveyor.ui.runpage import TREE_LIMIT, Model, RunPage
from conveyor.ui.shapes import Failure, ItemDetail, info, step_json, traits

try:  # orjson (the ui extra) decodes the many event lines of large maps several times faster
    from orjson import loads as _loads
except ImportError:  # pragma: no cover - depends on the installed extras
    _loads = json.loads  # type: ignore[assignment]

#: Path parts after a node that are indices (map items, loop iterations): patterns say ``*``.
INDEXED = ("item", "iteration")

__all__ = ["INDEXED", "TREE_LIMIT", "RunView", "step_json", "traits"]


def _fast(line: bytes | str) -> object:
    """An event line decoded fast (orjson when installed): for what the view only counts."""
    return _loads(line)


def _exact(line: bytes | str) -> Event | None:
    """An event line decoded exactly (json keeps integers of any size, NaN and infinities)."""
    try:
        return event_from_json(json.loads(line))
    except (ValueError, RecursionError):
        return None  # a line cut short by a crash mid-write, or nested past any record


def _node_types(graph: Graph, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Model]:
    """Each step's model (its kind's traits) by its pattern path (``*`` for item and
    iteration indices); branch keys stay as they are."""
    out: dict[tuple[str, ...], Model] = {}
    for name, node in graph.steps.items():
        here = (*prefix, name)
        out[here] = type(node)
        if node.entry in INDEXED:
            out.update(_node_types(node.inner("0"), (*here, "*")))
        else:
            for key, branch in node.named_subgraphs().items():
                out.update(_node_types(branch, (*here, key)))
    return out


class RunView(RunPage):
    """One run, folded incrementally; thread-safe. ``counts`` holds, per pattern path, how
    many records are in each status (a step inside a map: one record per item)."""

    def _find_failures(self) -> list[Failure]:
        return failures(self)

    def _item_detail(self, prefix: tuple[str, ...]) -> ItemDetail | None:
        return item_detail(self, prefix)

    def __init__(self, store: RunLogStore, run_id: str) -> None:
        self.store = store
        self.run_id = run_id
        self.run: RunRecord = store.load_record(run_id)
        #: The pipeline the run recorded, validated once (None, with the reason, if it is not
        #: one this version reads).
        self.pipeline: Pipeline | None = None
        self.pipeline_error: str | None = None
        try:
            self.pipeline = Pipeline.model_validate(self.run.pipeline)
        except ValidationError as exc:
            self.pipeline_error = f"the recorded pipeline cannot be read: {exc.error_count()} problem(s)"
        self.types = _node_types(self.pipeline.dag) if self.pipeline is not None else {}
        self.steps: dict[tuple[str, ...], StepRecord] = {}
        #: Map items' steps, compact (status, times, attempt, error), by path.
        self.items: dict[tuple[str, ...], ItemState] = {}
        self.counts: dict[tuple[str, ...], Counter[str]] = {}
        self._in_map: dict[tuple[str, ...], bool] = {}
        self.cursor: Any = None
        self.version = 0
        #: The ending last applied to what the run left open (see :meth:`_settle`).
        self._settled: Ending | None = None
        #: That ending, its time refined by the last event seen (what durations end at).
        self._ending: Ending | None = None
        #: Held while folding and while a page reads the view (pages are served on threads).
        self.lock = threading.RLock()
        self.refresh()

    def pattern(self, path: tuple[str, ...]) -> tuple[str, ...]:
        """``path`` with item and iteration indices as ``*``."""
        if len(path) < 3:
            return path
        out = list(path)
        for i in range(1, len(path), 2):
            model = self.types.get(tuple(out[:i]))
            if model is not None and model.entry in INDEXED:
                out[i] = "*"
        return tuple(out)

    def in_map(self, pattern: tuple[str, ...]) -> bool:
        """Whether a pattern path is inside a map's items (kept compact, counted)."""
        known = self._in_map.get(pattern)
        if known is None:
            known = self._in_map[pattern] = any(
                part == "*" and getattr(self.types.get(pattern[:i]), "entry", None) == "item"
                for i, part in enumerate(pattern)
            )
        return known

    def refresh(self) -> bool:
        """Fold what was appended since the last look; True if anything changed."""
        with self.lock:
            self.run = self.store.load_record(self.run_id)
            got = self.store.read_event_lines(self.run_id, self.cursor)
            if got is None:  # a store that reads whole runs only
                self.steps, self.items, self.counts = {}, {}, {}
                for record in self.store.load(self.run_id).steps.values():
                    key = tuple(record.path)
                    pattern = self.pattern(key)
                    if self.in_map(pattern):
                        state = self.items[key] = ItemState.of_record(record)
                        if record.last is None:  # a composite's own error
                            state.error = info(record).error
                    else:
                        self.steps[key] = record
                    self.counts.setdefault(pattern, Counter())[record.status] += 1
                self._settle()
                self.version += 1
                return True
            lines, self.cursor = got
            for line in lines:
                self._apply_line(line)
            settled = self._settle(fresh=bool(lines))
            if lines or settled:
                self.version += 1
            return bool(lines) or settled

    def _settle(self, fresh: bool = True) -> bool:
        """An ended run's steps and items still open read as its ending (cancelled,
        interrupted), their durations fixed at its end (see ``runlog.endings``). Only done
        again when events came (``fresh``) or the run's ending changed. True if any changed."""
        ending = ending_of(self.run)
        if ending is None:
            self._settled = self._ending = None
            return False
        if not fresh and ending == self._settled:
            return False
        self._settled = ending
        if self.run.ended_at is None:  # died without a word: its last sign of life
            seen = [t for e in self.items.values() for t in (e.start, e.end) if t is not None]
            steps = last_seen(self.steps.values())
            ending = ending_of(self.run, max([*seen, *([steps] if steps else [])], default=None)) or ending
        self._ending = ending
        changed = False
        for key, record in self.steps.items():
            before = record.status
            if close([record], ending):
                counts = self.counts.setdefault(self.pattern(key), Counter())
                counts[before] -= 1
                counts[record.status] += 1
                changed = True
        for key, entry in self.items.items():
            if entry.status is Status.RUNNING:
                counts = self.counts.setdefault(self.pattern(key), Counter())
                counts[Status.RUNNING] -= 1
                entry.close(ending.status, ending.t, ending.error)
                counts[ending.status] += 1
                changed = True
        return changed

    def _apply_line(self, line: bytes | str) -> None:
        """One event line. Inside maps (items by the thousand) only status, times, attempts
        and the error are kept, decoded fast; elsewhere the whole event, decoded exactly."""
        try:
            data = _fast(line)
        except ValueError:
            data = None
        path = data.get("path") if isinstance(data, dict) else None
        key = tuple(path) if isinstance(path, list) and path else ()
        pattern = self.pattern(key) if key else ()
        if not key or not self.in_map(pattern):
            event = _exact(line)
            if event is not None:
                self._apply(event)
            return
        assert isinstance(data, dict)
        counts = self.counts.get(pattern)
        if counts is None:
            counts = self.counts[pattern] = Counter()
        entry = self.items.get(key)
        if entry is None:
            entry = self.items[key] = ItemState()
        else:
            counts[entry.status] -= 1
        entry.apply_json(data)
        counts[entry.status] += 1

    def _apply(self, event: Event) -> None:
        key = tuple(event.path)
        record = self.steps.get(key)
        counts = self.counts.setdefault(self.pattern(key), Counter())
        if record is None:
            record = self.steps[key] = StepRecord(list(event.path), getattr(event, "type", None))
        else:
            counts[record.status] -= 1
        record.apply(event)
        counts[record.status] += 1

    def record(self, key: tuple[str, ...]) -> StepRecord | None:
        """The record at ``key``; a map item's step as far as the view keeps it (status,
        times, attempt count, the last error), without its returns."""
        if key in self.steps:
            return self.steps[key]
        entry = self.items.get(key)
        if entry is None:
            return None
        last = Attempt(entry.attempt or 1, entry.status, start=entry.start, end=entry.end)
        last.error = entry.error
        model = self.types.get(self.pattern(key))
        return StepRecord(list(key), kindreg.type_of(model) if model else DEFAULT_TYPE, entry.status, [last])
