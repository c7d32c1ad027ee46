"""``parallel``: every branch at once, each in a scope of its own; fails if any fails."""

from __future__ import annotations

from conveyor.graph.kinds.base import Composite, Job, Recorded, Walker, enter_branch, merge
from conveyor.graph.kinds.info import Info
from conveyor.graph.scope import Scope
from conveyor.spec.models import Graph, ParallelNode


class ParallelKind(Composite[ParallelNode]):
    """Branch values merge into the parent in declaration order: later branches win."""

    def body(self, walker: Walker, node: ParallelNode, path: list[str], scope: Scope, info: Info) -> bool:
        children = {name: Scope(scope) for name in node.branches}

        def job(name: str, graph: Graph) -> Job:
            return lambda: walker.run_graph(graph, [*path, name], children[name])

        jobs = [job(name, graph) for name, graph in node.branches.items()]
        results = walker.runner.run_jobs(jobs, len(jobs), len(jobs))
        merge(scope, children.values())
        return all(results)

    def replay(self, recorded: Recorded, node: ParallelNode, path: list[str], scope: Scope) -> bool | None:
        children, ok = [], True
        for name, branch in node.branches.items():
            child = Scope(scope)
            result = recorded.graph(branch, [*path, name], child)
            if result is None:
                return None
            ok = ok and result
            children.append(child)
        merge(scope, children)
        if recorded.observe:
            recorded.observe(path, node.type, ok, {})
        return ok

    def enter(
        self, node: ParallelNode, key: str, path: list[str], scope: Scope, recorded: Recorded
    ) -> tuple[Graph, Scope]:
        return enter_branch(node, key, path, scope)
