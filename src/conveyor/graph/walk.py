"""The one walk every executor and every replay shares: from ``start_at`` along ``next`` on
success and ``on_failure`` on failure, to a node that ends the graph."""

from __future__ import annotations

from collections.abc import Callable

from conveyor.spec.models import Graph, NodeBase, step_in


class Stop(Exception):
    """Raised by a walk's visitor to end the walk early (replay, at an unfinished step)."""


def walk(
    graph: Graph, prefix: list[str], visit: Callable[[NodeBase, list[str]], bool], until: str | None = None
) -> bool | str:
    """Follow ``graph`` from ``start_at``: ``visit`` each step (True: it succeeded), take
    ``next`` or ``on_failure``. Returns True/False when the graph ends in success/failure
    (a failure with no ``on_failure`` ends it in failure), or ``until`` when that step is
    reached (it is not visited)."""
    name: str | None = graph.start_at
    while name is not None:
        if name == until:
            return name
        node = step_in(graph, name)
        if node is None:  # validation refuses this; a hand-built graph may not
            return False
        if node.ends is not None:
            return node.ends
        name = node.following(visit(node, [*prefix, name]))
    return False
