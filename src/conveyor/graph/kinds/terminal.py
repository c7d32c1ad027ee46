"""``success`` and ``fail``: reaching one ends its graph. The walk stops there, so they never
run in-process; on Argo, reaching ``fail`` is a pod that says so and exits non-zero."""

from __future__ import annotations

from conveyor.graph.kinds.base import Kind, Pod
from conveyor.graph.scope import Scope
from conveyor.spec.models import NodeBase


class TerminalKind(Kind[NodeBase]):
    """Ends a graph; the walk reads ``ends`` from the model and never visits it."""

    def pod(self, pod: Pod, node: NodeBase, path: list[str], scope: Scope) -> bool:
        where = "/".join(path[:-1]) or "the pipeline"
        if node.ends:
            return True
        pod.say(f"{where} reached fail")
        return False
