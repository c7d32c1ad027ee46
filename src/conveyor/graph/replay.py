"""Rebuilding parameter scopes from recorded outcomes, without running anything.

When each step runs in a process of its own (an Argo pod, a Dask worker), the step's
parameters are not in memory: they are what the steps before it returned, as the run log
recorded them. Replay follows the same links as traversal (``next`` on success,
``on_failure`` on failure), applying recorded returns, down the path to one node.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from conveyor.graph.plan import PlanError, Stop, choose_branch, map_items, walk
from conveyor.graph.scope import Scope
from conveyor.spec.models import (
    ConditionalNode,
    Graph,
    MapNode,
    NodeBase,
    ParallelNode,
    Pipeline,
    StubNode,
    TaskNode,
)

#: Recorded outcome of a path: {"status": ..., "returns": {...}, "info": {...}} or None.
Lookup = Callable[[list[str]], Mapping[str, Any] | None]
#: Turns a recorded return value back into the live value (unpickles object references).
Restore = Callable[[TaskNode, Mapping[str, Any]], dict[str, Any]]
#: Told the outcome of each parallel or conditional node replayed (kind, success, info).
Observe = Callable[[list[str], str, bool, dict[str, Any]], None]
#: A map's items (the list parameter, or the partitions its fan-out planned).
Items = Callable[[MapNode, list[str], Scope], Sequence[Any]]


class NotReached(Exception):
    """The path cannot be reached from what has been recorded so far."""


def node_at(pipeline: Pipeline, path: list[str]) -> NodeBase:
    """The node a step path names; map item indices and branch keys are path parts too."""
    graph: Graph = pipeline.dag
    node: NodeBase | None = None
    i = 0
    while i < len(path):
        if path[i] not in graph.steps:
            raise NotReached(f"no step '{path[i]}' at {'/'.join(path[:i]) or 'the top level'}")
        node = graph.steps[path[i]]
        i += 1
        if i == len(path):
            break
        if isinstance(node, MapNode):
            if not path[i].isdigit():
                raise NotReached(f"'{path[i]}' is not an item index of map '{path[i - 1]}'")
            graph = node.branch
        elif isinstance(node, ParallelNode | ConditionalNode):
            if path[i] not in node.branches:
                raise NotReached(f"no branch '{path[i]}' in '{path[i - 1]}'")
            graph = node.branches[path[i]]
        else:
            raise NotReached(f"'{path[i - 1]}' has no steps inside it")
        i += 1
    if node is None:
        raise NotReached("an empty step path")
    return node


class Replay:
    def __init__(
        self, lookup: Lookup, restore: Restore, observe: Observe | None = None, items: Items | None = None
    ) -> None:
        self.lookup = lookup
        self.restore = restore
        self.observe = observe
        self.items: Items = items or (lambda node, path, scope: map_items(node, scope))

    def outcome(self, node: NodeBase, path: list[str], scope: Scope) -> bool | None:
        """Apply a finished node's recorded values to ``scope``; its success, or None if unfinished."""
        if isinstance(node, StubNode):
            return True
        record = self.lookup(path)
        if isinstance(node, TaskNode):
            if record is None or record.get("status") not in ("succeeded", "failed"):
                return None
            if record["status"] == "succeeded":
                scope.update(self.restore(node, record))
            return bool(record["status"] == "succeeded")
        if isinstance(node, MapNode):
            if record is None or record.get("status") not in ("succeeded", "failed"):
                return None
            if self.observe:
                self._observe_items(node, path, scope)
            if record["status"] == "succeeded":
                scope.update((record.get("info") or {}).get("returns") or {})
            return bool(record["status"] == "succeeded")
        if isinstance(node, ParallelNode):
            children, ok = [], True
            for name, branch in node.branches.items():
                child = Scope(scope)
                result = self.graph(branch, [*path, name], child)
                if result is None:
                    return None
                ok = ok and result
                children.append(child)
            for child in children:
                scope.update(child.own)
            if self.observe:
                self.observe(path, "parallel", ok, {})
            return ok
        if isinstance(node, ConditionalNode):
            branch_key = ((record or {}).get("info") or {}).get("branch")
            if branch_key is None:
                return None if record is None or record.get("status") == "running" else False
            child = Scope(scope)
            result = self.graph(node.branches[branch_key], [*path, branch_key], child)
            if result:
                scope.update(child.own)
            if self.observe and result is not None:
                self.observe(path, "conditional", result, {"branch": branch_key})
            return result
        return None

    def _observe_items(self, node: MapNode, path: list[str], scope: Scope) -> None:
        """Replay each item's branch so that composites inside items are observed too."""
        try:
            items = self.items(node, path, scope)
        except (PlanError, KeyError):
            return
        for index, item in enumerate(items):
            self.graph(node.branch, [*path, str(index)], Scope(scope, {node.iterate_as: item}))

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

    def scope_at(self, pipeline: Pipeline, target: list[str], initial: Mapping[str, Any]) -> Scope:
        """The scope the node at ``target`` runs in."""
        scope = Scope(None, initial)
        graph, rest = pipeline.dag, list(target)
        prefix: list[str] = []
        while True:
            head = rest.pop(0)
            self._walk_to(graph, prefix, head, scope)
            node = graph.steps[head]
            prefix = [*prefix, head]
            if not rest:
                return scope
            key = rest.pop(0)
            if isinstance(node, MapNode):
                items = self.items(node, prefix, scope)
                index = int(key)
                if index >= len(items):
                    raise NotReached(f"map '{head}' has {len(items)} items; there is no item {index}")
                scope = Scope(scope, {node.iterate_as: items[index]})
                graph = node.branch
            elif isinstance(node, ConditionalNode):
                choose_branch(node, scope.get(node.parameter), node.parameter in scope)
                scope = Scope(scope)
                graph = node.branches[key]
            elif isinstance(node, ParallelNode):
                scope = Scope(scope)
                graph = node.branches[key]
            prefix = [*prefix, key]
            if not rest:
                raise NotReached(f"{'/'.join(target)} names a branch, not a step")

    def _walk_to(self, graph: Graph, prefix: list[str], target: str, scope: Scope) -> None:
        try:
            reached = walk(graph, prefix, self._visit(scope), until=target)
        except Stop as unfinished:
            raise NotReached(f"'{unfinished}' has not finished, so '{target}' cannot run yet") from None
        if reached != target:
            raise NotReached(f"step '{target}' is not reached by what has been recorded")
