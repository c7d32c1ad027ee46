"""``task``: runs one command. The executor's runner records and retries it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from conveyor.graph.kinds.base import Kind, Pod, Recorded, Walker, finished
from conveyor.graph.kinds.info import Info, _then
from conveyor.graph.scope import Scope
from conveyor.jsontypes import JSONObject
from conveyor.runlog.records import Status
from conveyor.spec.models import TaskNode


@dataclass(kw_only=True)
class TaskInfo(Info):
    """How a task's last attempt ran when it was not simply run: restored from the cache
    (which run, which key), mocked, or patched by the mocked executor."""

    KEYS: ClassVar[tuple[str, ...]] = ("cached", "mocked", "patched", "error")

    cached: JSONObject | None = None
    mocked: bool | None = None
    patched: str | None = None

    def summary(self, error: str | None = None) -> str:
        detail = super().summary(error)
        if self.cached is not None:
            detail = f"cached: from run {self.cached.get('run')} (key {str(self.cached.get('key'))[:12]})"
        if self.mocked:
            return _then("mocked (not run)", detail)
        if self.patched:
            return _then(f"patched: {self.patched}", detail)
        return detail


class TaskKind(Kind[TaskNode]):
    """A task's outcome is its last attempt's; its returns are restored from that attempt."""

    info = TaskInfo

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
