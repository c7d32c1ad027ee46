"""``stub``: a placeholder that succeeds without running anything."""

from __future__ import annotations

from conveyor.graph.kinds.base import Kind, Pod, Recorded, Walker
from conveyor.graph.scope import Scope
from conveyor.jsontypes import JSONObject
from conveyor.runlog.records import Status
from conveyor.spec.models import NodeBase, StubNode


def info(node: NodeBase) -> JSONObject:
    """What a stub's record keeps: the keys it was given beyond a stub's own, unchecked."""
    extra = getattr(node, "model_extra", None)
    return {"keys": dict(extra)} if extra else {}


class StubKind(Kind[StubNode]):
    """Recorded as succeeded; replays as succeeded whether or not a record exists."""

    def run(self, walker: Walker, node: StubNode, path: list[str], scope: Scope) -> bool:
        walker.runner.node_event(path, node.type, Status.SUCCEEDED, info(node))
        return True

    def replay(self, recorded: Recorded, node: StubNode, path: list[str], scope: Scope) -> bool | None:
        return True

    def pod(self, pod: Pod, node: StubNode, path: list[str], scope: Scope) -> bool:
        pod.node_event(path, node.type, Status.SUCCEEDED, info(node))
        return True
