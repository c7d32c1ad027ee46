"""Rebuilding parameter scopes from recorded outcomes, without running anything.

When each step runs in a process of its own (an Argo pod), the step's parameters are not
in memory: they are what the steps before it returned, as the run log recorded them. Replay
follows the same walk as traversal, and asks each node's kind what its record means.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from conveyor.graph.kinds import kind_of
from conveyor.graph.kinds.base import Items, NotReached, Observe, Recorded
from conveyor.graph.kinds.map import list_items
from conveyor.graph.scope import Scope
from conveyor.graph.walk import Stop, walk
from conveyor.runlog.records import Attempt, StepRecord
from conveyor.spec.models import Graph, MapNode, NodeBase, Pipeline, TaskNode, step_in

#: Turns a recorded attempt back into the values it put into the scope (unpickles objects).
Restore = Callable[[TaskNode, Attempt], Mapping[str, object]]


def node_at(pipeline: Pipeline, path: list[str]) -> NodeBase:
    """The node a step path names; map item indices and branch keys are path parts too.
    An undeclared ``success`` or ``fail`` at the end names that graph's implicit terminal."""
    if not path:
        raise NotReached("an empty step path")
    graph: Graph = pipeline.dag
    for i in range(0, len(path), 2):
        node = step_in(graph, path[i])
        if node is None:
            raise NotReached(f"no step '{path[i]}' at {'/'.join(path[:i]) or 'the top level'}")
        if i + 1 == len(path):
            return node
        try:
            graph = node.inner(path[i + 1])
        except KeyError as exc:
            raise NotReached(f"'{path[i]}': {exc.args[0]}") from None
    raise NotReached(f"{'/'.join(path)} names a branch, not a step")


class Replay(Recorded):
    """Reads outcomes off the run log: what a finished node left in the scope, and the scope
    a node at any path runs in. Pods use it to rebuild their parameters; ``run-end`` to
    record the outcome of composites that no pod ends."""

    def __init__(
        self,
        steps: Mapping[tuple[str, ...], StepRecord],
        restore: Restore,
        observe: Observe | None = None,
        items: Items | None = None,
    ) -> None:
        self.steps = steps
        self._restore = restore
        self.observe = observe
        self._items: Items = items or (lambda node, path, scope: list_items(node, scope))

    def record(self, path: list[str]) -> StepRecord | None:
        return self.steps.get(tuple(path))

    def restore(self, node: TaskNode, attempt: Attempt) -> Mapping[str, object]:
        return self._restore(node, attempt)

    def items(self, node: MapNode, path: list[str], scope: Scope) -> Sequence[Any]:
        return self._items(node, path, scope)

    def outcome(self, node: NodeBase, path: list[str], scope: Scope) -> bool | None:
        """Apply a finished node's recorded values to ``scope``; its success, or None if unfinished."""
        return kind_of(node).replay(self, node, path, scope)

    def _visit(self, scope: Scope) -> Callable[[NodeBase, list[str]], bool]:
        def visit(node: NodeBase, path: list[str]) -> bool:
            ok = self.outcome(node, path, scope)
            if ok is None:
                raise Stop("/".join(path))
            return ok

        return visit

    def graph(self, graph: Graph, prefix: list[str], scope: Scope) -> bool | None:
        """Replay a whole graph: True/False when it has ended, None if it has not finished."""
        try:
            return walk(graph, prefix, self._visit(scope)) is True
        except Stop:
            return None

    def scope_at(self, pipeline: Pipeline, target: list[str], initial: Mapping[str, object]) -> Scope:
        """The scope the node at ``target`` runs in."""
        scope = Scope(None, initial)
        graph, prefix = pipeline.dag, list[str]()
        for i in range(0, len(target), 2):
            head = target[i]
            self._walk_to(graph, prefix, head, scope)
            node = step_in(graph, head)
            if node is None:
                raise NotReached(f"no step '{head}' at {'/'.join(prefix) or 'the top level'}")
            prefix = [*prefix, head]
            if i + 1 == len(target):
                return scope
            key = target[i + 1]
            graph, scope = kind_of(node).enter(node, key, prefix, scope, self)
            prefix = [*prefix, key]
        raise NotReached(f"{'/'.join(target)} names a branch, not a step")

    def _walk_to(self, graph: Graph, prefix: list[str], target: str, scope: Scope) -> None:
        try:
            reached = walk(graph, prefix, self._visit(scope), until=target)
        except Stop as unfinished:
            raise NotReached(f"'{unfinished}' has not finished, so '{target}' cannot run yet") from None
        if reached != target:
            raise NotReached(f"step '{target}' is not reached by what has been recorded")
