"""``stub``: a placeholder that succeeds without running anything."""

from __future__ import annotations

from typing import Any

from conveyor.graph.kinds.base import Kind, Pod, Recorded, Walker
from conveyor.graph.scope import Scope
from conveyor.runlog.records import Status


class StubKind(Kind):
    """Recorded as succeeded; replays as succeeded whether or not a record exists."""

    def run(self, walker: Walker, node: Any, path: list[str], scope: Scope) -> bool:
        walker.runner.node_event(path, "stub", Status.SUCCEEDED, {})
        return True

    def replay(self, recorded: Recorded, node: Any, path: list[str], scope: Scope) -> bool | None:
        return True

    def pod(self, pod: Pod, node: Any, path: list[str], scope: Scope) -> bool:
        pod.node_event(path, "stub", Status.SUCCEEDED, {})
        return True
