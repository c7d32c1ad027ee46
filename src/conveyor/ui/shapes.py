"""The JSON shapes the UI sends its page, one TypedDict each, and the functions that turn
run log records into them. The page's script (``static/app.js``) reads exactly these keys:
a renamed key is a type error here, not an ``undefined`` in the browser.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TypedDict

from conveyor.graph.kinds import Info, info_of
from conveyor.runlog.records import Status, StepRecord
from conveyor.spec.models import NodeBase

#: A record's values as the run log keeps them (returns, metrics, info): shown, not read.
Values = Mapping[str, object]
#: A kind's figures for the DAG (items, iterations, branch), as ``Info.state`` gives them.
KindState = dict[str, int | str | None]


class Traits(TypedDict):
    """What the page's script knows of a node's kind (it names no kinds itself)."""

    composite: bool
    entry: str | None
    runs_command: bool
    ends: bool | None
    shape: str


class NodeState(TypedDict, total=False):
    """A node's status in the DAG; inside maps, its records counted per status."""

    status: str
    counts: dict[str, int]
    label: str
    state: KindState


class DagNode(TypedDict, total=False):
    """One node of a DAG level: its kind's traits, its state, its place in the layout
    (see ``ui.layout``)."""

    name: str
    type: str
    path: str
    composite: bool
    entry: str | None
    runs_command: bool
    ends: bool | None
    shape: str
    status: str
    counts: dict[str, int]
    label: str
    state: KindState
    layer: int
    row: int
    x: float
    y: float
    #: Inside a branch expanded in place: the composite it belongs to and the branch key;
    #: ``dim`` when that branch was not taken (a conditional chose another).
    group: str
    branch: str
    dim: bool
    #: A join of an expanded composite (drawn small; its status is the composite's).
    join: bool
    #: A composite that can be expanded in place (its toggle), and whether it is.
    expandable: bool
    expanded: bool


#: An edge: ``kind`` is ``next`` or ``on_failure``; ``points`` its route in the layout
#: ("from" is a Python keyword: hence this form).
DagEdge = TypedDict(
    "DagEdge", {"from": str, "to": str, "kind": str, "points": list[list[float]]}, total=False
)


class Dag(TypedDict, total=False):
    """One graph level of the DAG (or why it cannot be drawn, in ``error``); at a map
    item's level, the item whole (``item``, see ``ui.failures.item_detail``)."""

    nodes: list[DagNode]
    edges: list[DagEdge]
    error: str
    width: float
    height: float
    #: Every box's width (sized from the level's longest label) and the characters a label
    #: shows before it is clipped.
    node_width: float
    label_chars: int
    item: ItemDetail


class CatalogEntry(TypedDict):
    """A file an attempt put in the catalog, as the run page lists it."""

    name: str | None
    size: int | None
    sha256: str | None


class AttemptRow(TypedDict):
    """One attempt of a step, with what it produced."""

    attempt: int
    status: str
    duration: float | None
    exit_code: int | None
    error: str | None
    returns: Values
    metrics: Values
    catalog: list[CatalogEntry]
    has_log: bool


class StepRow(TypedDict):
    """A step in the step table."""

    path: list[str]
    type: str | None
    status: str
    duration: float | None
    summary: str
    info: Values
    attempts: list[AttemptRow]


class Bar(TypedDict):
    """A bar of the timeline."""

    path: str
    status: str
    start: float
    end: float
    #: The map item the bar is a step of ("fan/3": its page), None outside maps.
    item: str | None
    #: Whether the step runs a command (it has attempts and logs); a composite's row
    #: leads to its level of the DAG instead.
    runs_command: bool


#: A histogram bin of item durations, seconds ("from" is a Python keyword: hence this form).
Bin = TypedDict("Bin", {"from": float, "to": float, "count": int})


class FailedItem(TypedDict):
    """A failed item: its index, the step that failed in it (its path) and how."""

    item: str
    error: str
    step: str
    attempt: int


class MapDetail(TypedDict):
    """A map's items: counts, durations and a page of the failed ones."""

    path: str
    items: int
    counts: dict[str, int]
    histogram: list[Bin]
    failed_total: int
    page: int
    failed: list[FailedItem]


class Failure(TypedDict):
    """A failed step or map item: where, what, and how to reach its attempt and log."""

    path: str
    type: str | None
    error: str | None
    attempt: int
    #: The map item it is in ("fan/3"), None outside maps: its page is the item's.
    item: str | None
    log: str | None


class ItemDetail(TypedDict):
    """One map item: the value it was given and each of its steps whole."""

    path: str
    index: str
    parameter: str | None
    value: object
    value_known: bool
    steps: list[StepRow]


class Header(TypedDict, total=False):
    """The run's header card."""

    run_id: str
    status: str
    pipeline: str | None
    pipeline_file: str | None
    started_at: float | None
    ended_at: float | None
    duration: float | None
    resumed: int
    error: str | None
    host: str | None
    tag: object
    config: dict[str, object]
    initial_parameters: Values
    final_parameters: Values
    progress: dict[str, int] | None
    version: int
    user: str | None
    #: What failed, for the summary a failed run opens on (see ``ui.failures``).
    failures: list[Failure]


def info(record: StepRecord) -> Info:
    """A record's info as its kind's typed record."""
    return info_of(record.type, record.info)


def dag_node(name: str, kind: str, path: str, node: NodeBase, state: NodeState) -> DagNode:
    """A node of the DAG: its name, kind, traits and state."""
    out: DagNode = {
        "name": name,
        "type": kind,
        "path": path,
        "composite": node.composite,
        "entry": node.entry,
        "runs_command": node.runs_command,
        "ends": node.ends,
        "shape": node.shape,
        "status": state.get("status", "pending"),
    }
    for key in ("counts", "label", "state"):
        if key in state:
            out[key] = state[key]
    return out


def traits(node: NodeBase) -> Traits:
    """What the UI's script needs to know of a node's kind (it names no kinds itself)."""
    return {
        "composite": node.composite,
        "entry": node.entry,
        "runs_command": node.runs_command,
        "ends": node.ends,
        "shape": node.shape,
    }


def histogram(values: list[float], bins: int = 20) -> list[Bin]:
    """Counts of ``values`` (sorted) in equal-width bins."""
    if not values:
        return []
    low, high = values[0], values[-1]
    width = (high - low) / bins or 1.0
    counts = [0] * bins
    for value in values:
        counts[min(bins - 1, int((value - low) / width))] += 1
    return [{"from": low + i * width, "to": low + (i + 1) * width, "count": c} for i, c in enumerate(counts)]


def span(record: StepRecord) -> tuple[float | None, float | None]:
    """A step's earliest attempt start and latest attempt end (its own, with no attempts)."""
    starts = [a.start for a in record.attempts if a.start] or ([record.start] if record.start else [])
    ends = [a.end for a in record.attempts if a.end] or ([record.end] if record.end else [])
    return (min(starts) if starts else None), (max(ends) if ends else None)


def duration(start: float | None, end: float | None) -> float | None:
    """Seconds from ``start`` to ``end`` (to now while it runs)."""
    if start is None:
        return None
    return (end or time.time()) - start


def _catalog_entry(entry: Mapping[str, object]) -> CatalogEntry:
    """The name, size and digest of a recorded catalog entry (what is not of its type: None)."""
    name, size, digest = entry.get("name"), entry.get("size"), entry.get("sha256")
    return {
        "name": name if isinstance(name, str) else None,
        "size": size if isinstance(size, int) and not isinstance(size, bool) else None,
        "sha256": digest if isinstance(digest, str) else None,
    }


def step_json(record: StepRecord, kind: str | None = None) -> StepRow:
    """A step record as the UI shows it: every attempt, with what it produced."""
    start, end = span(record)
    last = record.last
    return {
        "path": record.path,
        "type": record.type or kind,
        "status": str(record.status),
        "duration": duration(start, end) if start else None,
        "summary": info(record).summary(last.error if last is not None else None),
        "info": {k: v for k, v in record.info.items() if k != "returns"},
        "attempts": [
            {
                "attempt": a.attempt,
                "status": str(a.status),
                "duration": duration(a.start, a.end) if a.start else None,
                "exit_code": a.exit_code,
                "error": a.error,
                "returns": a.returns,
                "metrics": a.metrics,
                "catalog": [_catalog_entry(c) for c in a.catalog],
                "has_log": bool(a.log) or a.status is Status.RUNNING,
            }
            for a in record.attempts
        ],
    }
