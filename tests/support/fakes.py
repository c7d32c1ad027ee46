"""A fake runner for traversal tests: tasks are functions of their parameters, nothing runs."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from conveyor.graph.kinds.base import Job
from conveyor.graph.kinds.map import list_items
from conveyor.graph.scope import Scope
from conveyor.runlog.records import Status
from conveyor.spec.load import LoadedPipeline, load_pipeline
from conveyor.spec.models import MapNode, Pipeline, TaskNode
from support import PIPELINES

#: A fake task: the parameters it sees -> its returned values; raise to fail it.
Behaviour = Callable[[Mapping[str, Any]], Mapping[str, Any]]


def shape(name: str) -> LoadedPipeline:
    """A pipeline file from ``tests/pipelines`` by its shape's name."""
    return load_pipeline(Path(PIPELINES / f"{name}.yaml"))


def edited(pipeline: Pipeline, change: Callable[[dict[str, Any]], None]) -> Pipeline:
    """A variant of ``pipeline``: its data, changed by ``change``, validated again."""
    data = pipeline.model_dump(mode="json", exclude_defaults=True)
    change(data)
    return Pipeline.model_validate(data)


class FakeRunner:
    """Implements the Runner protocol: records what happens, runs jobs one after another."""

    def __init__(
        self, tasks: Mapping[str, Behaviour] | None = None, reducers: Mapping[str, Any] | None = None
    ):
        self.tasks = dict(tasks or {})
        self.reducers = dict(reducers or {})
        self.ran: list[tuple[str, ...]] = []
        self.events: list[tuple[tuple[str, ...], str, Status, dict[str, Any]]] = []
        self.items_done: list[tuple[tuple[str, ...], bool]] = []

    def run_task(self, node: TaskNode, path: list[str], scope: Scope) -> bool:
        self.ran.append(tuple(path))
        behaviour = self.tasks.get(node.command, lambda params: {})
        try:
            values = behaviour(scope.view())
        except Exception:
            return False
        scope.update(values)
        return True

    def run_jobs(self, jobs: Iterable[Job], count: int, limit: int | None) -> list[bool]:
        return [job() for job in jobs]

    def run_items(
        self,
        node: MapNode,
        path: list[str],
        scope: Scope,
        items: Sequence[Any],
        values: list[dict[str, object]],
        general: Callable[[int], bool],
    ) -> list[bool]:
        return [general(index) for index in range(len(items))]

    def node_event(self, path: list[str], kind: str, status: Status, info: dict[str, Any]) -> None:
        self.events.append((tuple(path), kind, status, dict(info)))

    def resolve(self, dotted: str) -> Callable[..., Any]:
        return self.reducers[dotted]  # type: ignore[no-any-return]

    def item_done(self, node: MapNode, path: list[str], ok: bool) -> None:
        self.items_done.append((tuple(path), ok))

    def items(self, node: MapNode, path: list[str], scope: Scope) -> Sequence[Any]:
        return list_items(node, scope)

    def final(self, path: tuple[str, ...]) -> tuple[Status, dict[str, Any]]:
        """The last status and info recorded for a composite node."""
        for where, _, status, info in reversed(self.events):
            if where == path:
                return status, info
        raise KeyError(path)
