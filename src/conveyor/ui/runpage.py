"""What a run's page shows, computed from a :class:`~conveyor.ui.views.RunView`'s fold:
the header, progress, one DAG level, the step table, a map's items and the timeline.

Kept apart from the fold itself (``ui/views.py``) so that each stays a few hundred lines:
:class:`RunPage` is the half of ``RunView`` that reads, never folds.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Collection

from conveyor.runlog.base import RunLogStore, effective_status
from conveyor.runlog.endings import Ending, ending_of
from conveyor.runlog.itemfold import ItemState
from conveyor.runlog.records import RunRecord, Status, StepRecord
from conveyor.spec import kindreg
from conveyor.spec.models import IMPLICIT, TERMINALS, Graph, NodeBase, Pipeline
from conveyor.ui.shapes import (
    Bar,
    Dag,
    DagEdge,
    DagNode,
    Failure,
    Header,
    ItemDetail,
    MapDetail,
    NodeState,
    StepRow,
    dag_node,
    duration,
    histogram,
    info,
    span,
    step_json,
)

Model = type[NodeBase]
#: The most steps a parallel's or conditional's branches may hold to be expanded in place
#: unasked; a composite the page asks to expand (its toggle) may hold up to EXPAND_MOST.
EXPAND_LIMIT = 60
EXPAND_MOST = 400
#: The most nodes one level's graph may hold with its composites expanded: a page naming
#: hundreds of composites to expand gets the first that fit, the rest folded (each request
#: is laid out under the view's lock, so its size is bounded).
EXPAND_TOTAL = 1200
#: What the steps inside an expanded map or loop are drawn as (their states are counted
#: over all items or iterations, as on the level that opens them).
_EACH = {"item": "each item", "iteration": "each iteration"}
#: Steps per run page the step table lists before saying how many more there are.
TREE_LIMIT = 2000
#: How progress groups statuses; what is not here (running, queued, unknown) is running.
_OUTCOME = {
    Status.SUCCEEDED: "succeeded",
    Status.REUSED: "succeeded",
    Status.FAILED: "failed",
    Status.CANCELLED: "stopped",
    Status.INTERRUPTED: "stopped",
}
_ENDED = ("succeeded", "failed", "stopped")


class RunPage:
    """The pages' reads of a folded run (the fold's fields are declared here, set by
    :class:`~conveyor.ui.views.RunView`)."""

    store: RunLogStore
    run_id: str
    run: RunRecord
    pipeline: Pipeline | None
    types: dict[tuple[str, ...], Model]
    steps: dict[tuple[str, ...], StepRecord]
    items: dict[tuple[str, ...], ItemState]
    counts: dict[tuple[str, ...], Counter[str]]
    version: int
    lock: threading.RLock
    _failures: tuple[int, list[Failure]]
    _ending: Ending | None

    def pattern(self, path: tuple[str, ...]) -> tuple[str, ...]:  # pragma: no cover - RunView's
        raise NotImplementedError

    def in_map(self, pattern: tuple[str, ...]) -> bool:  # pragma: no cover - RunView's
        raise NotImplementedError

    @property
    def status(self) -> Status:
        """The run's status, as its lease says (a run whose driver died reads interrupted)."""
        return effective_status(self.run)

    def ended_at(self) -> float | None:
        """When the run ended: recorded, or, for one that died without a word, when it was
        last seen alive (so its duration stops growing)."""
        if self.run.ended_at is None and self._ending is not None and ending_of(self.run) is not None:
            return self._ending.t
        return self.run.ended_at

    def progress(self) -> dict[str, int]:
        """The pipeline's top-level steps and map items, each by outcome: succeeded, failed,
        stopped (cancelled or interrupted), running; ``*_done`` counts those that ended.

        A parallel, loop or conditional counts once, as one step (counting the steps inside
        some composites and not others counted one failure twice: the parallel and its
        branch's step), and, once the run succeeded, only the steps it ran (an ``on_failure``
        path not taken is not to do). Map items are counted apart, whatever level they are at."""
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
            if len(pattern) == 1:
                total += 1
                if record is not None:
                    steps[_OUTCOME.get(record.status, "running")] += 1
            if model.entry == "item":
                count = int(info(record).state().get("items") or 0) if record is not None else 0
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
                if record is None or info(record).chosen() != pattern[i]:
                    return False
        return True

    def _inner(self, map_pattern: tuple[str, ...]) -> list[tuple[str, ...]]:
        """The patterns of the steps directly in a map's branch, in declaration order."""
        size = len(map_pattern) + 2
        return [p for p in self.types if len(p) == size and p[: size - 1] == (*map_pattern, "*")]

    def item_of(self, key: tuple[str, ...]) -> str | None:
        """The map item ``key`` is in ("fan/3", the innermost), for the link to its page."""
        pattern = self.pattern(key)
        for i in range(len(pattern) - 1, 0, -1):
            if pattern[i] == "*" and getattr(self.types.get(pattern[:i]), "entry", None) == "item":
                return "/".join(key[: i + 1])
        return None

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

    def header(self) -> Header:
        """The run's header card: what ran, where, how long, its parameters and progress."""
        run = self.run
        config = run.config or {}
        return {
            "run_id": run.run_id,
            "status": str(self.status),
            "pipeline": run.pipeline_name,
            "pipeline_file": run.pipeline_file,
            "started_at": run.started_at,
            "ended_at": run.ended_at,
            "duration": duration(run.started_at, self.ended_at()),
            "resumed": run.resumed,
            "error": run.error,
            "host": run.host,
            "tag": run.extra.get("tag") if isinstance(run.extra, dict) else None,
            "config": {k: (v or {}).get("type") for k, v in config.items() if isinstance(v, dict)},
            "initial_parameters": run.initial_parameters,
            "final_parameters": run.final_parameters,
            "progress": self.progress(),
            "version": self.version,
            "failures": self.failures(),
        }

    def failures(self) -> list[Failure]:
        """What failed (see ``ui.failures``), computed again only when the run changed:
        it reads the heads of logs, which a page polling a live run must not pay for."""
        cached: tuple[int, list[Failure]] | None = getattr(self, "_failures", None)
        if cached is not None and cached[0] == self.version:
            return cached[1]
        found = self._find_failures() if self._any_failed() else []
        self._failures = (self.version, found)
        return found

    def _find_failures(self) -> list[Failure]:
        """What failed, read afresh (``ui.views.RunView`` reads it with ``ui.failures``,
        which reads this page: the page itself does not import it)."""
        return []

    def _item_detail(self, prefix: tuple[str, ...]) -> ItemDetail | None:
        """The map item ``prefix`` names, whole (``ui.views.RunView``: ``ui.failures``)."""
        return None

    def _any_failed(self) -> bool:
        return any(c.get(Status.FAILED, 0) > 0 for c in self.counts.values())

    def node_state(self, pattern: tuple[str, ...], kind: str) -> NodeState:
        """A node's status for the DAG: its record's, or, inside maps, counts per status."""
        item = self.items.get(pattern)  # a step of one map item (the item's page)
        if item is not None:
            return {"status": str(item.status)}
        counts = {str(s): n for s, n in self.counts.get(pattern, Counter()).items() if n > 0}
        record = self.steps.get(pattern) if "*" not in pattern else None
        if record is not None:
            status = str(record.status)
        elif counts:
            order = ["failed", "running", "cancelled", "succeeded", "reused"]
            status = next((s for s in order if s in counts), next(iter(counts)))
        else:
            status = "pending"
        out: NodeState = {"status": status}
        if "*" in pattern:
            out["counts"] = counts
        if record is not None:
            held = info(record)
            out["state"] = held.state()
            model = kindreg.lookup(kind)
            if model is not None and model.entry == "item":
                out["counts"] = self.map_counts(pattern, int(out["state"].get("items") or 0))
            out["label"] = held.label()
        return out

    def dag(
        self, graph: Graph, prefix: tuple[str, ...], pattern: tuple[str, ...],
        expand: Collection[str] = (), fold: Collection[str] = (),
    ) -> Dag:  # fmt: skip
        """One graph level of the DAG, laid out (``ui.layout``), each node with its state.

        A composite can be expanded in place: the node forks into its branches' steps,
        side by side, which join again before what follows; a conditional's branches not
        taken are dimmed; a map's or loop's body is drawn once, its steps counted over all
        items or iterations. Unasked, parallels and conditionals of modest size are expanded
        and maps and loops are not; ``expand`` and ``fold`` name the composites of this level
        the page's toggles changed (so that a big graph can be opened one part at a time).
        At a map item's level (``fan/3``) the item comes whole, for its page."""
        from conveyor.ui.layout import lay_out

        nodes: list[DagNode] = []
        edges: list[DagEdge] = []
        for name, node in graph.steps.items():
            kind = kindreg.type_of(type(node))
            path = "/".join((*prefix, name))
            nodes.append(dag_node(name, kind, path, node, self.node_state((*pattern, name), kind)))
            source = self._expand(
                name, node, (prefix, pattern), nodes, edges, _wanted(name, node, expand, fold)
            )
            for target, how in ((node.following(True), "next"), (node.following(False), "on_failure")):
                if target is not None:
                    edges.append({"from": source, "to": target, "kind": how})
        used = {e["to"] for e in edges}
        for end in TERMINALS:
            if end in used and end not in graph.steps:
                implicit = IMPLICIT[end]
                pending: NodeState = {"status": "pending"}
                nodes.append(dag_node(end, kindreg.type_of(type(implicit)), "", implicit, pending))
        status = {n["name"]: n.get("status") for n in nodes}
        for n in nodes:  # an end is reached when a step led to it the way its edge says
            if (
                n["ends"] is not None
                and "group" not in n
                and any(
                    e["to"] == n["name"]
                    and status.get(e["from"])
                    in (("succeeded", "reused") if e["kind"] == "next" else ("failed",))
                    for e in edges
                )
            ):
                n["status"] = "succeeded" if n["ends"] else "failed"
        out = lay_out(graph.start_at, nodes, edges)
        if prefix and prefix[-1].isascii() and prefix[-1].isdigit() and self.in_map((*pattern[:-1], "*")):
            item = self._item_detail(prefix)
            if item is not None:
                out["item"] = item
        return out

    def _expand(
        self, name: str, node: NodeBase, where: tuple[tuple[str, ...], tuple[str, ...]],
        nodes: list[DagNode], edges: list[DagEdge], wanted: bool,
    ) -> str:  # fmt: skip
        """Add the inside of the composite ``node`` in place when ``wanted`` (see
        ``_wanted``): a parallel's or conditional's branches, or a map's or loop's body; the
        name what follows it leads from: its join, or the node itself when it stays folded.
        The node says whether it can be toggled (``expandable``) and is (``expanded``)."""
        prefix, pattern = where
        own = next(n for n in reversed(nodes) if n["name"] == name)
        if node.entry in _EACH:
            branches = {"*": node.inner("0")} if node.subgraphs() else {}
        else:
            branches = node.named_subgraphs() if node.entry == "branch" else {}
        size = sum(len(b.steps) for b in branches.values())
        if not branches or size > EXPAND_MOST:
            return name
        wanted = wanted and len(nodes) + size <= EXPAND_TOTAL
        own["expandable"], own["expanded"] = True, wanted
        if not wanted:
            return name
        record = self.steps.get((*pattern, name))
        chosen = info(record).chosen() if record is not None and node.entry == "branch" else None
        join = f"{name}\u2009\u25c6"  # a name no step has: it holds a thin space
        joined: DagNode = {"name": join, "type": own["type"], "path": own["path"], "composite": False,
                           "entry": None, "runs_command": False, "ends": None, "shape": "join",
                           "status": own.get("status", "pending"), "join": True, "group": name}  # fmt: skip
        for key, branch in branches.items():
            dim = chosen is not None and key != chosen
            inner = {step: f"{name}/{key}/{step}" for step in branch.steps}
            for step, child in branch.steps.items():
                kind = kindreg.type_of(type(child))
                state = self.node_state((*pattern, name, key, step), kind)
                entry = dag_node(inner[step], kind, "/".join((*prefix, name, key, step)), child, state)
                entry["group"], entry["branch"], entry["dim"] = name, _EACH.get(node.entry or "", key), dim
                nodes.append(entry)
                for target, how in ((child.following(True), "next"), (child.following(False), "on_failure")):
                    if target is not None:
                        edges.append({"from": inner[step], "to": inner.get(target, join), "kind": how})
            if branch.start_at in inner:
                edges.append({"from": name, "to": inner[branch.start_at], "kind": "branch"})
        nodes.append(joined)
        return join

    def tree(self) -> list[StepRow]:
        """Steps outside map items, in first-seen order, each with all its attempts; a map
        is one row with its counts (its items are in the map panel)."""
        rows: list[StepRow] = []
        for key, record in self.steps.items():
            pattern = self.pattern(key)
            if self.in_map(pattern):
                continue
            if len(rows) >= TREE_LIMIT:
                break
            model = self.types.get(pattern)
            rows.append(step_json(record, kindreg.type_of(model) if model else None))
        return rows

    def map_detail(self, path: tuple[str, ...], page: int, size: int = 50) -> MapDetail:
        """A map's items: counts, a histogram of item durations, and a page of failed items
        with their errors (read on demand, once per request, not per poll)."""
        record = self.steps.get(path)
        items = int(info(record).state().get("items") or 0) if record is not None else 0
        spans: dict[str, list[float]] = {}
        failed: dict[str, tuple[str, str, int]] = {}
        depth = len(path)
        with self.lock:
            for key, state in self.items.items():
                if len(key) <= depth + 1 or key[:depth] != path:
                    continue
                index, start, end = key[depth], state.start, state.end
                if start is not None:
                    got = spans.setdefault(index, [start, end or start])
                    got[0], got[1] = min(got[0], start), max(got[1], end or start)
                if state.status is Status.FAILED:
                    said = f"{'/'.join(key[depth + 1 :])}: {state.error or 'failed'}"
                    failed.setdefault(index, (said, "/".join(key), state.attempt or 1))
        durations = sorted(e - s for s, e in spans.values())
        order = sorted(failed, key=lambda i: int(i) if i.isascii() and i.isdigit() else 0)
        pattern = self.pattern(path)
        return {
            "path": "/".join(path),
            "items": items,
            "counts": self.map_counts(pattern, items),
            "histogram": histogram(durations),
            "failed_total": len(order),
            "page": page,
            "failed": [
                {"item": i, "error": failed[i][0], "step": failed[i][1], "attempt": failed[i][2]}
                for i in order[page * size : (page + 1) * size]
            ],
        }

    def gantt(self, limit: int = 400, items: int = 100) -> list[Bar]:
        """Bars of steps, and of the first ``items`` map items' steps, by start time."""
        now = time.time()
        bars: list[Bar] = []
        for key, record in self.steps.items():
            start, end = span(record)
            if start is not None and len(bars) < limit:
                model = self.types.get(self.pattern(key))
                bars.append(
                    {"path": "/".join(key), "status": str(record.status), "start": start, "end": end or now,
                     "item": None, "runs_command": model is None or model.runs_command}
                )  # fmt: skip
        for n, (key, state) in enumerate(self.items.items()):
            if n >= items:
                break
            if state.start is not None:
                bars.append(
                    {"path": "/".join(key), "status": str(state.status), "start": state.start,
                     "end": state.end or now, "item": self.item_of(key), "runs_command": True}
                )  # fmt: skip
        bars.sort(key=lambda b: b["start"])
        return bars


def _wanted(name: str, node: NodeBase, expand: Collection[str], fold: Collection[str]) -> bool:
    """Whether the composite ``name`` is drawn expanded: as the page's toggle asked, else a
    parallel or conditional of EXPAND_LIMIT steps or fewer is, and a map or loop is not."""
    if name in fold:
        return False
    if name in expand:
        return True
    if node.entry != "branch":
        return False
    return sum(len(b.steps) for b in node.named_subgraphs().values()) <= EXPAND_LIMIT
