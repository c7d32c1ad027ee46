"""Following a pipeline to its end in this process. One implementation for every executor.

The executor supplies a :class:`~conveyor.graph.kinds.base.Runner`: how one task runs (and
is recorded) and how a set of independent jobs runs concurrently. Which step is next is the
walk's business; what a node kind means is its module's (``conveyor.graph.kinds``).
"""

from __future__ import annotations

from conveyor.graph.kinds import kind_of
from conveyor.graph.kinds.base import Runner
from conveyor.graph.scope import Scope
from conveyor.graph.walk import walk
from conveyor.spec.models import Graph, NodeBase


class Traversal:
    """Runs graphs with a runner: the walk, and each node by its kind.

    The local, Dask and server executors all run pipelines through this class, so a
    pipeline means the same wherever it runs in-process.
    """

    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    def run_graph(self, graph: Graph, prefix: list[str], scope: Scope) -> bool:
        """Run ``graph`` from its start to its end; True if it ended in success."""
        return walk(graph, prefix, lambda node, path: self.run_node(node, path, scope)) is True

    def run_node(self, node: NodeBase, path: list[str], scope: Scope) -> bool:
        return kind_of(node).run(self, node, path, scope)
