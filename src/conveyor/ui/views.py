"""A run as the UI shows it, kept up to date by folding only the events appended since the
last look (``RunLogStore.read_events``): following a live run costs what changed.

Map items and loop iterations are summarised, never listed whole: each step inside a map is
counted per status under its *pattern* path (item indices as ``*``), counts kept up to date
event by event. The run page therefore has the same size for a map of 10 or 100,000 items.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from typing import Any

from pydantic import ValidationError

from conveyor.graph.kinds import Info, info_of
from conveyor.runlog.base import RunLogStore, effective_status
from conveyor.runlog.endings import Ending, close, ending_of, last_seen
from conveyor.runlog.records import Attempt, Event, RunRecord, Status, StepRecord, event_from_json
from conveyor.spec import kindreg
from conveyor.spec.models import DEFAULT_TYPE, IMPLICIT, TERMINALS, Graph, NodeBase, Pipeline, step_in

try:  # orjson (the ui extra) decodes the many event lines of large maps several times faster
    from orjson import loads as _loads
except ImportError:  # pragma: no cover - depends on the installed extras
    _loads = json.loads  # type: ignore[assignment]

#: Path parts after a node that are indices (map items, loop iterations): patterns say ``*``.
INDEXED = ("item", "iteration")
Model = type[NodeBase]
#: Steps per run page the step table lists before saying how many more there are.
TREE_LIMIT = 2000


_STATUSES = {str(s): s for s in Status}
#: How progress groups statuses; what is not here (running, queued, unknown) is running.
_OUTCOME = {
    Status.SUCCEEDED: "succeeded",
    Status.REUSED: "succeeded",
    Status.FAILED: "failed",
    Status.CANCELLED: "stopped",
    Status.INTERRUPTED: "stopped",
}
_ENDED = ("succeeded", "failed", "stopped")


def _status(value: Any) -> Status:
    """A recorded status (a dict lookup: this runs once per map item event)."""
    return _STATUSES.get(value) or Status.of(value)


def _fast(line: bytes | str) -> Any:
    """An event line decoded fast (orjson when installed): for what the view only counts."""
    return _loads(line)


def _exact(line: bytes | str) -> Event | None:
    """An event line decoded exactly (json keeps integers of any size, NaN and infinities)."""
    try:
        return event_from_json(json.loads(line))
    except ValueError:
        return None  # a line cut short by a crash mid-write


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


class RunView:
    """One run, folded incrementally; thread-safe. ``counts`` holds, per pattern path, how
    many records are in each status (a step inside a map: one record per item)."""

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
        #: Map items' steps, compact: [status, start, end, error, attempts] by path.
        self.items: dict[tuple[str, ...], list[Any]] = {}
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
                        start, end = _span(record)
                        last = record.last
                        error = last.error if last is not None else _info(record).error
                        self.items[key] = [record.status, start, end, error, len(record.attempts)]
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
            seen = [t for e in self.items.values() for t in (e[1], e[2]) if isinstance(t, int | float)]
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
            if entry[0] is Status.RUNNING:
                counts = self.counts.setdefault(self.pattern(key), Counter())
                counts[Status.RUNNING] -= 1
                entry[0], entry[2] = ending.status, max(ending.t, entry[1] or ending.t)
                entry[3] = entry[3] or ending.error
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
            entry = self.items[key] = [Status.RUNNING, None, None, None, 0]
        else:
            counts[entry[0]] -= 1
        kind, t = data.get("e"), data.get("t")
        if kind == "start":
            entry[0], entry[4] = Status.RUNNING, max(entry[4], int(data.get("attempt") or 0))
            entry[1] = t if entry[1] is None else entry[1]
        elif kind == "end":
            entry[0], entry[2], entry[3] = _status(data.get("status")), t, data.get("error")
            entry[1] = entry[1] if entry[1] is not None else data.get("started", t)
            entry[4] = max(entry[4], int(data.get("attempt") or 0))
        else:
            entry[0] = _status(data.get("status"))
            entry[1] = t if entry[1] is None else entry[1]
            if entry[0].finished:
                entry[2] = t
        counts[entry[0]] += 1

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
        status, start, end, error, attempts = entry
        last = Attempt(attempts or 1, status, start=start, end=end)
        last.error = error
        model = self.types.get(self.pattern(key))
        return StepRecord(list(key), kindreg.type_of(model) if model else DEFAULT_TYPE, status, [last])

    # --- what pages show -------------------------------------------------------------------

    @property
    def status(self) -> Status:
        return effective_status(self.run)

    def ended_at(self) -> float | None:
        """When the run ended: recorded, or, for one that died without a word, when it was
        last seen alive (so its duration stops growing)."""
        if self.run.ended_at is None and self._ending is not None and ending_of(self.run) is not None:
            return self._ending.t
        return self.run.ended_at

    def progress(self) -> dict[str, int]:
        """Declared steps (outside maps) and map items, each by outcome: succeeded, failed,
        stopped (cancelled or interrupted), running; ``*_done`` counts those that ended.

        Only what the run has to do counts: a conditional's steps once it chose their branch
        (the others are not to do), and, once the run succeeded, only the steps it ran (an
        ``on_failure`` path not taken is not to do either)."""
        steps: Counter[str] = Counter()
        items: Counter[str] = Counter()
        total = n_items = 0
        succeeded = self.status is Status.SUCCEEDED
        for pattern, model in self.types.items():
            if model.ends is not None or "*" in pattern or not self._taken(pattern):
                continue
            record = self.steps.get(pattern)
            if record is None and succeeded:
                continue
            total += 1
            if record is not None:
                steps[_OUTCOME.get(record.status, "running")] += 1
            if model.entry == "item":
                count = int(_info(record).state().get("items") or 0) if record is not None else 0
                n_items += count
                by = self.map_counts(pattern, count)
                items["succeeded"] += by.get("succeeded", 0)
                items["failed"] += by.get("failed", 0)
                items["stopped"] += by.get("cancelled", 0) + by.get("interrupted", 0)
                items["running"] += by.get("running", 0)
        out = {"steps_done": sum(steps[k] for k in _ENDED), "steps": total}
        out |= {"items_done": sum(items[k] for k in _ENDED), "items": n_items}
        for k in (*_ENDED, "running"):
            out[f"steps_{k}"], out[f"items_{k}"] = steps[k], items[k]
        return out

    def _taken(self, pattern: tuple[str, ...]) -> bool:
        """Whether every conditional above ``pattern`` chose the branch it is in."""
        for i in range(1, len(pattern) - 1):
            if getattr(self.types.get(pattern[:i]), "chooses", False):
                record = self.steps.get(pattern[:i])
                if record is None or _info(record).chosen() != pattern[i]:
                    return False
        return True

    def _inner(self, map_pattern: tuple[str, ...]) -> list[tuple[str, ...]]:
        """The patterns of the steps directly in a map's branch, in declaration order."""
        size = len(map_pattern) + 2
        return [p for p in self.types if len(p) == size and p[: size - 1] == (*map_pattern, "*")]

    def _items_done(self, map_pattern: tuple[str, ...]) -> int:
        """Items finished: those whose last declared step finished, and those that failed
        in an earlier step (a progress figure, not a record)."""
        inner = [p for p in self._inner(map_pattern) if self.types[p].ends is None]
        if not inner:
            return 0
        last = self.counts.get(inner[-1], Counter())
        done = sum(n for s, n in last.items() if Status.of(s).finished)
        return done + sum(self.counts.get(p, Counter()).get(Status.FAILED, 0) for p in inner[:-1])

    def map_counts(self, pattern: tuple[str, ...], items: int) -> dict[str, int]:
        """A map's items by status: succeeded (its last step did), failed, cancelled,
        interrupted and running (in any step), pending (not started)."""
        inner = [p for p in self._inner(pattern) if self.types[p].ends is None]
        if not inner:
            return {}
        last = self.counts.get(inner[-1], Counter())
        out = {"succeeded": last.get(Status.SUCCEEDED, 0) + last.get(Status.REUSED, 0)}
        for status in (Status.FAILED, Status.CANCELLED, Status.INTERRUPTED, Status.RUNNING):
            out[str(status)] = sum(self.counts.get(p, Counter()).get(status, 0) for p in inner)
        out["pending"] = max(0, items - sum(out.values()))
        return {k: v for k, v in out.items() if v}

    def header(self) -> dict[str, Any]:
        run = self.run
        config = run.config or {}
        return {
            "run_id": run.run_id,
            "status": str(self.status),
            "pipeline": run.pipeline_name,
            "pipeline_file": run.pipeline_file,
            "started_at": run.started_at,
            "ended_at": run.ended_at,
            "duration": _duration(run.started_at, self.ended_at()),
            "resumed": run.resumed,
            "error": run.error,
            "host": run.host,
            "tag": run.extra.get("tag") if isinstance(run.extra, dict) else None,
            "config": {k: (v or {}).get("type") for k, v in config.items() if isinstance(v, dict)},
            "initial_parameters": run.initial_parameters,
            "final_parameters": run.final_parameters,
            "progress": self.progress(),
            "version": self.version,
        }

    def node_state(self, pattern: tuple[str, ...], kind: str) -> dict[str, Any]:
        """A node's status for the DAG: its record's, or, inside maps, counts per status."""
        counts = {str(s): n for s, n in self.counts.get(pattern, Counter()).items() if n > 0}
        record = self.steps.get(pattern) if "*" not in pattern else None
        if record is not None:
            status = str(record.status)
        elif counts:
            order = ["failed", "running", "cancelled", "succeeded", "reused"]
            status = next((s for s in order if s in counts), next(iter(counts)))
        else:
            status = "pending"
        out: dict[str, Any] = {"status": status}
        if "*" in pattern:
            out["counts"] = counts
        if record is not None:
            info = _info(record)
            out.update(info.state())
            model = kindreg.lookup(kind)
            if model is not None and model.entry == "item":
                out["counts"] = self.map_counts(pattern, int(out.get("items") or 0))
            out["label"] = info.label()
        return out

    def dag(self, graph: Graph, prefix: tuple[str, ...], pattern: tuple[str, ...]) -> dict[str, Any]:
        """One graph level of the DAG, laid out, each node with its state."""
        layers = _layers(graph)
        nodes, edges = [], []
        for name, node in graph.steps.items():
            kind = kindreg.type_of(type(node))
            state = self.node_state((*pattern, name), kind)
            layer, row = layers[name]
            nodes.append(
                {
                    "name": name,
                    "type": kind,
                    **traits(node),
                    "layer": layer,
                    "row": row,
                    "path": "/".join((*prefix, name)),
                    **state,
                }
            )
            for target, how in ((node.following(True), "next"), (node.following(False), "on_failure")):
                if target is not None:
                    edges.append({"from": name, "to": target, "kind": how})
        used = {e["to"] for e in edges}
        for end in TERMINALS:
            if end in used and end not in graph.steps:
                layer, row = layers[end]
                node = IMPLICIT[end]
                nodes.append(
                    {
                        "name": end,
                        "type": kindreg.type_of(type(node)),
                        **traits(node),
                        "layer": layer,
                        "row": row,
                        "status": "pending",
                        "path": "",
                    }
                )
        status = {n["name"]: n["status"] for n in nodes}
        for n in nodes:  # an end is reached when a step led to it the way its edge says
            if n["ends"] is not None and any(
                e["to"] == n["name"]
                and status.get(e["from"]) in (("succeeded", "reused") if e["kind"] == "next" else ("failed",))
                for e in edges
            ):
                n["status"] = "succeeded" if n["ends"] else "failed"
        return {"nodes": nodes, "edges": edges}

    def tree(self) -> list[dict[str, Any]]:
        """Steps outside map items, in first-seen order, each with all its attempts; a map
        is one row with its counts (its items are in the map panel)."""
        rows: list[dict[str, Any]] = []
        for key, record in self.steps.items():
            pattern = self.pattern(key)
            if self.in_map(pattern):
                continue
            if len(rows) >= TREE_LIMIT:
                break
            model = self.types.get(pattern)
            rows.append(step_json(record, kindreg.type_of(model) if model else None))
        return rows

    def map_detail(self, path: tuple[str, ...], page: int, size: int = 50) -> dict[str, Any]:
        """A map's items: counts, a histogram of item durations, and a page of failed items
        with their errors (read on demand, once per request, not per poll)."""
        record = self.steps.get(path)
        items = int(_info(record).state().get("items") or 0) if record is not None else 0
        spans: dict[str, list[float]] = {}
        failed: dict[str, str] = {}
        depth = len(path)
        with self.lock:
            for key, (status, start, end, error, _) in self.items.items():
                if len(key) <= depth + 1 or key[:depth] != path:
                    continue
                index = key[depth]
                if start is not None:
                    span = spans.setdefault(index, [start, end or start])
                    span[0], span[1] = min(span[0], start), max(span[1], end or start)
                if status is Status.FAILED:
                    failed.setdefault(index, f"{'/'.join(key[depth + 1 :])}: {error or 'failed'}")
        durations = sorted(e - s for s, e in spans.values())
        order = sorted(failed, key=lambda i: int(i) if i.isdigit() else 0)
        pattern = self.pattern(path)
        return {
            "path": "/".join(path),
            "items": items,
            "counts": self.map_counts(pattern, items),
            "histogram": _histogram(durations),
            "failed_total": len(order),
            "page": page,
            "failed": [{"item": i, "error": failed[i]} for i in order[page * size : (page + 1) * size]],
        }

    def gantt(self, limit: int = 400, items: int = 100) -> list[dict[str, Any]]:
        """Bars of steps, and of the first ``items`` map items' steps, by start time."""
        bars: list[dict[str, Any]] = []
        for key, record in self.steps.items():
            start, end = _span(record)
            if start is not None and len(bars) < limit:
                bars.append({"path": "/".join(key), "status": str(record.status), "start": start, "end": end})
        for n, (key, (status, start, end, _, _)) in enumerate(self.items.items()):
            if n >= items:
                break
            if start is not None:
                bars.append({"path": "/".join(key), "status": str(status), "start": start, "end": end})
        now = time.time()
        for bar in bars:
            bar["end"] = bar["end"] or now
        bars.sort(key=lambda b: float(b["start"]))
        return bars


def _info(record: StepRecord) -> Info:
    """A record's info as its kind's typed record."""
    return info_of(record.type, record.info)


def traits(node: NodeBase) -> dict[str, bool | str | None]:
    """What the UI's script needs to know of a node's kind (it names no kinds itself)."""
    return {
        "composite": node.composite,
        "entry": node.entry,
        "runs_command": node.runs_command,
        "ends": node.ends,
        "shape": node.shape,
    }


def _histogram(values: list[float], bins: int = 20) -> list[dict[str, float]]:
    """Counts of ``values`` (sorted) in equal-width bins."""
    if not values:
        return []
    low, high = values[0], values[-1]
    width = (high - low) / bins or 1.0
    counts = [0] * bins
    for value in values:
        counts[min(bins - 1, int((value - low) / width))] += 1
    return [{"from": low + i * width, "to": low + (i + 1) * width, "count": c} for i, c in enumerate(counts)]


def _span(record: StepRecord) -> tuple[float | None, float | None]:
    starts = [a.start for a in record.attempts if a.start] or ([record.start] if record.start else [])
    ends = [a.end for a in record.attempts if a.end] or ([record.end] if record.end else [])
    return (min(starts) if starts else None), (max(ends) if ends else None)


def _duration(start: float | None, end: float | None) -> float | None:
    if start is None:
        return None
    return (end or time.time()) - start


def step_json(record: StepRecord, kind: str | None = None) -> dict[str, Any]:
    """A step record as the UI shows it: every attempt, with what it produced."""
    start, end = _span(record)
    last = record.last
    return {
        "path": record.path,
        "type": record.type or kind,
        "status": str(record.status),
        "duration": _duration(start, end) if start else None,
        "summary": _info(record).summary(last.error if last is not None else None),
        "info": {k: v for k, v in record.info.items() if k != "returns"},
        "attempts": [
            {
                "attempt": a.attempt,
                "status": str(a.status),
                "duration": _duration(a.start, a.end) if a.start else None,
                "exit_code": a.exit_code,
                "error": a.error,
                "returns": a.returns,
                "metrics": a.metrics,
                "catalog": [
                    {"name": c.get("name"), "size": c.get("size"), "sha256": c.get("sha256")}
                    for c in a.catalog
                ],
                "has_log": bool(a.log) or a.status is Status.RUNNING,
            }
            for a in record.attempts
        ],
    }


def _layers(graph: Graph) -> dict[str, tuple[int, int]]:
    """A layered layout: each step one layer below the deepest step that leads to it (by
    next and on_failure, from start_at), rows in declaration order within a layer."""
    depth: dict[str, int] = {graph.start_at: 0}
    todo = [graph.start_at]
    limit = len(graph.steps) + 2
    while todo:
        name = todo.pop()
        node: NodeBase | None = step_in(graph, name)
        if node is None or node.ends is not None:
            continue
        for target in (node.following(True), node.following(False)):
            if target is None:
                continue
            new = depth[name] + 1
            if new > depth.get(target, -1) and new <= limit:
                depth[target] = new
                todo.append(target)
    for name in graph.steps:  # unreachable ones (declared ends) at the bottom
        depth.setdefault(name, max(depth.values(), default=0) + 1)
    rows: dict[int, int] = {}
    out = {}
    for name in [*graph.steps, *TERMINALS]:
        if name in depth and name not in out:
            layer = depth[name]
            out[name] = (layer, rows.get(layer, 0))
            rows[layer] = rows.get(layer, 0) + 1
    return out
