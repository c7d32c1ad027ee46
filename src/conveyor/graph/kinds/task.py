"""``task``: runs one command. The executor's runner records and retries it."""

from __future__ import annotations

from typing import Any

from conveyor.graph.kinds.base import Kind, Pod, Recorded, Walker, finished
from conveyor.graph.scope import Scope
from conveyor.runlog.records import Status
from conveyor.spec.models import TaskNode


class TaskKind(Kind):
    """A task's outcome is its last attempt's; its returns are restored from that attempt."""

    def run(self, walker: Walker, node: TaskNode, path: list[str], scope: Scope) -> bool:
        return walker.runner.run_task(node, path, scope)

    def replay(self, recorded: Recorded, node: TaskNode, path: list[str], scope: Scope) -> bool | None:
        record = recorded.record(path)
        if record is None or not finished(record):
            return None
        if record.status is Status.SUCCEEDED and record.last is not None:
            scope.update(recorded.restore(node, record.last))
        return record.status is Status.SUCCEEDED

    def pod(self, pod: Pod, node: TaskNode, path: list[str], scope: Scope) -> Any:
        return pod.run_task(node, path, scope)
