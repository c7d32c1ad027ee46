"""Following a pipeline to its end. One implementation for every executor.

The executor supplies a :class:`Runner`: how one task runs (and is recorded) and how a set
of independent jobs runs concurrently. Everything else, which step is next, which branch,
how map items are scoped and reduced, what a failure means, is decided here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from conveyor.graph.plan import (
    PlanError,
    choose_branch,
    reduce_values,
    returned_names,
    walk,
)
from conveyor.graph.scope import Scope
from conveyor.spec.models import ConditionalNode, Graph, MapNode, NodeBase, ParallelNode, StubNode, TaskNode

Job = Callable[[], bool]


class Runner(Protocol):
    def run_task(self, node: TaskNode, path: list[str], scope: Scope) -> bool:
        """Run (or, on resume, reuse) one task; put its returns into ``scope``."""

    def run_jobs(self, jobs: Iterable[Job], count: int, limit: int | None) -> list[bool]:
        """Run independent jobs, at most ``limit`` at once; results in job order."""

    def node_event(self, path: list[str], kind: str, status: str, info: dict[str, Any]) -> None:
        """Record a composite or stub node's progress."""

    def resolve(self, dotted: str) -> Callable[..., Any]:
        """Import a function named by a dotted path (a map's reducer)."""

    def item_done(self, path: list[str], ok: bool) -> None:
        """A map item finished (progress displays; incremental ledgers)."""

    def items(self, node: MapNode, path: list[str], scope: Scope) -> Sequence[Any]:
        """A map's items: the list parameter's values, or the partitions of its source."""


class Traversal:
    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    def run_graph(self, graph: Graph, prefix: list[str], scope: Scope) -> bool:
        return walk(graph, prefix, lambda node, path: self.run_node(node, path, scope)) is True

    def run_node(self, node: NodeBase, path: list[str], scope: Scope) -> bool:
        if isinstance(node, TaskNode):
            return self.runner.run_task(node, path, scope)
        if isinstance(node, StubNode):
            self.runner.node_event(path, "stub", "succeeded", {})
            return True
        kind = str(getattr(node, "type", "node"))
        self.runner.node_event(path, kind, "running", {})
        info: dict[str, Any] = {}
        try:
            if isinstance(node, ParallelNode):
                ok = self._parallel(node, path, scope)
            elif isinstance(node, MapNode):
                ok = self._map(node, path, scope, info)
            elif isinstance(node, ConditionalNode):
                ok = self._conditional(node, path, scope, info)
            else:
                raise PlanError(f"cannot run a node of type {kind}")
        except PlanError as exc:
            info["error"] = str(exc)
            ok = False
        self.runner.node_event(path, kind, "succeeded" if ok else "failed", info)
        return ok

    def _parallel(self, node: ParallelNode, path: list[str], scope: Scope) -> bool:
        children = {name: Scope(scope) for name in node.branches}

        def job(name: str, graph: Graph) -> Job:
            return lambda: self.run_graph(graph, [*path, name], children[name])

        jobs = [job(name, graph) for name, graph in node.branches.items()]
        results = self.runner.run_jobs(jobs, len(jobs), len(jobs))
        for child in children.values():  # in declaration order: later branches win on clashes
            scope.update(child.own)
        return all(results)

    def _map(self, node: MapNode, path: list[str], scope: Scope, info: dict[str, Any]) -> bool:
        items = self.runner.items(node, path, scope)
        info["items"] = len(items)
        self.runner.node_event(path, "map", "running", {"items": len(items)})
        names = returned_names(node.branch)
        children: list[dict[str, Any]] = [{} for _ in range(len(items))]

        def job(index: int) -> Job:
            def run() -> bool:
                child = Scope(scope, {node.iterate_as: items[index]})
                ok = self.run_graph(node.branch, [*path, str(index)], child)
                children[index] = child.own
                self.runner.item_done([*path, str(index)], ok)
                return ok

            return run

        results = self.runner.run_jobs((job(i) for i in range(len(items))), len(items), node.max_parallelism)
        failed = [i for i, ok in enumerate(results) if not ok]
        info["failed"] = len(failed)
        if failed:
            info["failed_items"] = failed[:1000]
            if node.on_item_failure == "fail":
                return False
        reducer = self.runner.resolve(node.reducer) if node.reducer else None
        kept = [own for own, ok in zip(children, results, strict=True) if ok]
        try:
            reduced = reduce_values(names, kept, reducer)
        except Exception as exc:  # a failing reducer fails the map, with its error
            raise PlanError(f"reducer {node.reducer} failed: {type(exc).__name__}: {exc}") from None
        scope.update(reduced)
        info["returns"] = reduced  # what a later step, in another process, reads back
        return True

    def _conditional(
        self, node: ConditionalNode, path: list[str], scope: Scope, info: dict[str, Any]
    ) -> bool:
        key, branch = choose_branch(node, scope.get(node.parameter), node.parameter in scope)
        info["branch"] = key
        child = Scope(scope)
        ok = self.run_graph(branch, [*path, key], child)
        scope.update(child.own)
        return ok
