"""``map``: the branch once per item, each item in its own scope; then the item failure
policy and the reduction. Written once: in-process runs, and the pods' ``fan-in``
(:func:`gather` then :func:`conclude`), both come here.
"""

from __future__ import annotations

import contextlib
import inspect
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from conveyor.graph.kinds.base import Composite, NotReached, PlanError, Pod, Recorded, Walker
from conveyor.graph.kinds.info import Info, _then
from conveyor.graph.scope import Scope
from conveyor.runlog.records import Status
from conveyor.spec.models import Graph, MapNode, returned_names

#: Failed item indices kept in the map's record (the count is always exact).
FAILED_LISTED = 1000


def list_items(node: MapNode, scope: Scope) -> list[Any]:
    """A plain map's items: the list parameter ``iterate_on``."""
    name = node.iterate_on or ""
    if name not in scope:
        raise PlanError(f"map needs parameter '{name}', which is not set")
    value = scope.get(name)
    if not isinstance(value, list | tuple):
        raise PlanError(f"map iterates on '{name}', which must be a list; found {type(value).__name__}")
    return list(value)


def item_scope(node: MapNode, scope: Scope, item: Any) -> Scope:
    """The scope an item's branch runs in: the parent's values and ``iterate_as``."""
    return Scope(scope, {node.iterate_as: item})


@dataclass
class MapOutcome:
    """What a map's items add up to: success, and the info its record keeps."""

    ok: bool
    info: MapInfo = field(default_factory=lambda: MapInfo())
    #: The reduced values, into the scope (objects too: an item's step may return one).
    returns: dict[str, object] = field(default_factory=dict)


def conclude(
    node: MapNode,
    results: Sequence[bool],
    values: Sequence[Mapping[str, object]],
    resolve: Callable[[str], Callable[..., Any]],
) -> MapOutcome:
    """Apply ``on_item_failure`` and reduce: each name returned in the branch becomes the
    list of its values in item order (succeeded items only), or ``reducer(values)``."""
    failed = [i for i, ok in enumerate(results) if not ok]
    info = MapInfo(items=len(results), failed=len(failed))
    if failed:
        info.failed_items = failed[:FAILED_LISTED]
        if node.on_item_failure == "fail":
            return MapOutcome(False, info)
    kept = [own for own, ok in zip(values, results, strict=True) if ok]
    try:
        reducer = resolve(node.reducer) if node.reducer else None
        returns: dict[str, object] = {}
        for name in returned_names(node.branch):
            collected = [own.get(name) for own in kept]
            returns[name] = reduce_values(reducer, collected) if reducer is not None else collected
    except Exception as exc:  # a failing reducer fails the map, with its error
        info.error = f"reducer {node.reducer} failed: {type(exc).__name__}: {exc}"
        return MapOutcome(False, info)
    info.returns = returns  # what a later step, in another process, reads back
    return MapOutcome(True, info, returns)


def reduce_values(reducer: Callable[..., Any], values: list[Any]) -> Any:
    """Call a reducer the way it is written: one taking ``*values`` (runnable's convention,
    ``lambda *x: max(x)``) gets them spread; any other gets the list."""
    try:
        spread = any(
            p.kind is inspect.Parameter.VAR_POSITIONAL for p in inspect.signature(reducer).parameters.values()
        )
    except (TypeError, ValueError):  # builtins without a signature (max, sum) take the list
        spread = False
    return reducer(*values) if spread else reducer(values)


def gather(
    recorded: Recorded, node: MapNode, path: list[str], scope: Scope, items: Sequence[Any]
) -> tuple[list[bool], list[dict[str, object]]]:
    """Each item's success and values, replayed from the run log (a pod's fan-in)."""
    results, values = [], []
    for index, item in enumerate(items):
        child = item_scope(node, scope, item)
        results.append(recorded.graph(node.branch, [*path, str(index)], child) is True)
        values.append(child.own)
    return results, values


@dataclass(kw_only=True)
class MapInfo(Info):
    """A map's record: its items, how many failed (the first of them listed), files an
    incremental map skipped, and the reduced returns a later step reads back. A partitioned
    map's plan (manifest, source) stays in ``extra``."""

    KEYS: ClassVar[tuple[str, ...]] = ("items", "failed", "failed_items", "skipped", "error", "returns")

    items: int | None = None
    failed: int | None = None
    failed_items: list[int] | None = None
    skipped: int | None = None
    #: The reduced returns as a later step reads them back: what the reduction made when
    #: set here (the store writes a value that is not JSON as its text), JSON when read.
    returns: dict[str, object] | None = None

    def summary(self, error: str | None = None) -> str:
        detail = super().summary(error)
        if self.items is None:
            return detail
        text = _then(f"{self.items} items, {self.failed or 0} failed", detail)
        if self.failed_items:
            shown = ", ".join(str(i) for i in self.failed_items[:10])
            text += f" (failed items: {shown}{'…' if len(self.failed_items) > 10 else ''})"
        if self.skipped:
            text += f"; {self.skipped} files already processed"
        return text

    def state(self) -> dict[str, int | str | None]:
        return {"items": self.items}

    @property
    def planned(self) -> bool:
        """Whether it holds a partitioned map's plan (in ``extra``: its manifest's prefix,
        sizes, locations): written once per run, then reused by a resumed run and by pods."""
        return "manifest" in self.extra


class MapKind(Composite[MapNode]):
    """Items run as independent jobs, at most ``max_parallelism`` at once."""

    info = MapInfo
    verbs: ClassVar[dict[str, tuple[str, ...]]] = {"fan-out": ("count", "indices"), "fan-in": ()}

    def body(self, walker: Walker, node: MapNode, path: list[str], scope: Scope, info: MapInfo) -> bool:
        runner = walker.runner
        items = runner.items(node, path, scope)
        info.items = len(items)
        runner.node_event(path, node.type, Status.RUNNING, MapInfo(items=len(items)).to_json())
        values: list[dict[str, object]] = [{} for _ in range(len(items))]

        def item(index: int) -> bool:
            child = item_scope(node, scope, items[index])
            where = [*path, str(index)]
            ok = walker.run_graph(node.branch, where, child)
            values[index] = child.own
            runner.item_done(node, where, ok)
            return ok

        results = runner.run_items(node, path, scope, items, values, item)
        outcome = conclude(node, results, values, runner.resolve)
        info.take(outcome.info)
        if outcome.ok:
            scope.update(outcome.returns)
        return outcome.ok

    def replay(self, recorded: Recorded, node: MapNode, path: list[str], scope: Scope) -> bool | None:
        record = recorded.record(path)
        if record is None or not record.status.finished:
            return None
        if recorded.observe:  # replay each item so that composites inside items are observed too
            with contextlib.suppress(PlanError, NotReached):
                gather(recorded, node, path, scope, recorded.items(node, path, scope))
        if record.status is Status.SUCCEEDED:
            scope.update(MapInfo.from_json(record.info).returns or {})
        return record.status is Status.SUCCEEDED

    def enter(
        self, node: MapNode, key: str, path: list[str], scope: Scope, recorded: Recorded
    ) -> tuple[Graph, Scope]:
        if not (key.isascii() and key.isdigit()):
            raise NotReached(f"'{key}' is not an item index of map '{path[-1]}'")
        values = recorded.items(node, path, scope)
        index = int(key)
        if index >= len(values):
            raise NotReached(f"map '{path[-1]}' has {len(values)} items; there is no item {index}")
        return node.branch, item_scope(node, scope, values[index])

    def verb(self, pod: Pod, name: str, node: MapNode, path: list[str], index: int | None) -> bool:
        """``fan-out`` plans and records the items and outputs their count (and their indices,
        for a partitioned map's ``withParam``); ``fan-in`` gathers, applies the policy, reduces
        and records the outcome, as an in-process map does."""
        if index is not None:
            raise NotReached(f"'{'/'.join([*path, str(index)])}' is an item, not the map")
        if name == "fan-out":
            return self._fan_out(pod, node, path)
        if name == "fan-in":
            return self._fan_in(pod, node, path)
        return super().verb(pod, name, node, path, index)

    def _fan_out(self, pod: Pod, node: MapNode, path: list[str]) -> bool:
        try:
            scope = pod.scope_at(path)
            items, info = pod.plan(node, path, scope)
        except PlanError as exc:
            pod.node_event(path, node.type, Status.FAILED, MapInfo(error=str(exc)).to_json())
            pod.say(str(exc))
            pod.output("count", "0")
            pod.output("indices", "[]")
            return False
        pod.node_event(path, node.type, Status.RUNNING, info)
        pod.output("count", str(len(items)))
        pod.output("indices", json.dumps(list(range(len(items)))))
        pod.say(f"{len(items)} items")
        return True

    def _fan_in(self, pod: Pod, node: MapNode, path: list[str]) -> bool:
        try:
            scope = pod.scope_at(path)
            items = pod.items(node, path, scope)
        except (PlanError, NotReached) as exc:
            pod.node_event(path, node.type, Status.FAILED, MapInfo(error=str(exc)).to_json())
            return False
        results, values = gather(pod.recorded(), node, path, scope, items)
        for index, ok in enumerate(results):
            if ok:
                pod.item_done(node, path, index, items)
        outcome = conclude(node, results, values, pod.resolve)
        status = Status.SUCCEEDED if outcome.ok else Status.FAILED
        pod.node_event(path, node.type, status, outcome.info.to_json())
        return outcome.ok
