"""Decisions that do not depend on who runs the steps: next step, branch choice, reduce."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from conveyor.graph.scope import Scope
from conveyor.spec.models import (
    TERMINALS,
    ConditionalNode,
    FailNode,
    Graph,
    MapNode,
    NodeBase,
    SuccessNode,
    TaskNode,
    walk_nodes,
)


class PlanError(Exception):
    """A composite node cannot proceed: a missing parameter, no branch matching, not a list."""


def terminal(graph: Graph, name: str) -> bool | None:
    """True/False if ``name`` ends the graph in success/failure, None if it is a step to run."""
    node = graph.steps.get(name)
    if node is None:
        return name == "success" if name in TERMINALS else None
    if isinstance(node, SuccessNode):
        return True
    if isinstance(node, FailNode):
        return False
    return None


def following(node: NodeBase, succeeded: bool) -> str | None:
    """The step after ``node``: ``next`` on success, ``on_failure`` on failure (None: fail)."""
    if succeeded:
        return str(getattr(node, "next", "success"))
    return getattr(node, "on_failure", None)


class Stop(Exception):
    """Raised by a walk's visitor to end the walk early (replay, at an unfinished step)."""


def walk(
    graph: Graph, prefix: list[str], visit: Callable[[NodeBase, list[str]], bool], until: str | None = None
) -> bool | str:
    """Follow ``graph`` from ``start_at``: ``visit`` each step (True: it succeeded), take
    ``next`` or ``on_failure``. Returns True/False when the graph ends in success/failure, or
    ``until`` when that step is reached (it is not visited). The one walk every executor
    and every replay shares."""
    name: str | None = graph.start_at
    while name is not None:
        if name == until:
            return name
        ended = terminal(graph, name)
        if ended is not None:
            return ended
        node = graph.steps[name]
        name = following(node, visit(node, [*prefix, name]))
    return False


def branch_key(value: Any) -> str:
    """The branch key a conditional's parameter value selects: text as is, else its JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def choose_branch(node: ConditionalNode, values: Any, present: bool) -> tuple[str, Graph]:
    """The branch keyed by the parameter's value. No match is a failure of the node."""
    if not present:
        raise PlanError(f"conditional needs parameter '{node.parameter}', which is not set")
    key = branch_key(values)
    if key not in node.branches:
        raise PlanError(
            f"parameter '{node.parameter}' = {key!r} matches no branch "
            f"(branches: {', '.join(sorted(node.branches))})"
        )
    return key, node.branches[key]


def map_items(node: MapNode, scope: Scope) -> list[Any]:
    """A plain map's items: the list parameter ``iterate_on``."""
    name = node.iterate_on or ""
    if name not in scope:
        raise PlanError(f"map needs parameter '{name}', which is not set")
    value = scope.get(name)
    if not isinstance(value, list | tuple):
        raise PlanError(f"map iterates on '{name}', which must be a list; found {type(value).__name__}")
    return list(value)


def returned_names(graph: Graph) -> list[str]:
    """Every name a graph's tasks return, nested ones included, in declaration order (what a
    map reduces)."""
    names: dict[str, None] = {}
    for node in walk_nodes(graph):
        if isinstance(node, TaskNode):
            names.update((r.name, None) for r in node.returns)
    return list(names)


def reduce_values(
    names: list[str],
    per_item: list[dict[str, Any]],
    reducer: Callable[[list[Any]], Any] | None,
) -> dict[str, Any]:
    """Each returned name becomes the list of its values in item order, or the reducer's result."""
    out = {}
    for name in names:
        values = [own.get(name) for own in per_item]
        out[name] = reducer(values) if reducer is not None else values
    return out
