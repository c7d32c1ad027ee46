"""``conditional``: the branch keyed by a parameter's value. No match fails the node."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar

from conveyor.graph.kinds.base import (
    Composite,
    NotReached,
    PlanError,
    Pod,
    Recorded,
    Walker,
    enter_branch,
)
from conveyor.graph.kinds.info import Info, _then
from conveyor.graph.scope import Scope
from conveyor.runlog.records import Status
from conveyor.spec.models import ConditionalNode, Graph


def branch_key(value: Any) -> str:
    """The branch key a conditional's parameter value selects: text as is, else its JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def choose(node: ConditionalNode, scope: Scope) -> str:
    """The key of the branch the parameter's value selects; PlanError if none does."""
    if node.parameter not in scope:
        raise PlanError(f"conditional needs parameter '{node.parameter}', which is not set")
    key = branch_key(scope.get(node.parameter))
    if key not in node.branches:
        raise PlanError(
            f"parameter '{node.parameter}' = {key!r} matches no branch "
            f"(branches: {', '.join(sorted(node.branches))})"
        )
    return key


@dataclass(kw_only=True)
class ConditionalInfo(Info):
    """A conditional's record: the key of the branch it chose."""

    KEYS: ClassVar[tuple[str, ...]] = ("branch", "error")

    branch: str | None = None

    def summary(self, error: str | None = None) -> str:
        detail = super().summary(error)
        return _then(f"branch {self.branch}", detail) if self.branch is not None else detail

    def label(self) -> str:
        return self.branch or ""

    def state(self) -> dict[str, int | str | None]:
        return {"branch": self.branch}

    def chosen(self) -> str | None:
        return self.branch


class ConditionalKind(Composite[ConditionalNode]):
    """The chosen branch runs in a child scope whose values merge back if it succeeds."""

    info = ConditionalInfo

    def body(
        self, walker: Walker, node: ConditionalNode, path: list[str], scope: Scope, info: ConditionalInfo
    ) -> bool:
        key = choose(node, scope)
        info.branch = key
        child = Scope(scope)
        ok = walker.run_graph(node.branches[key], [*path, key], child)
        scope.update(child.own)
        return ok

    def replay(self, recorded: Recorded, node: ConditionalNode, path: list[str], scope: Scope) -> bool | None:
        record = recorded.record(path)
        key = ConditionalInfo.from_json(record.info).branch if record is not None else None
        if key is None or key not in node.branches:
            return None if record is None or record.status is Status.RUNNING else False
        child = Scope(scope)
        result = recorded.graph(node.branches[key], [*path, key], child)
        if result:
            scope.update(child.own)
        if recorded.observe and result is not None:
            recorded.observe(path, node.type, result, ConditionalInfo(branch=key).to_json())
        return result

    def enter(
        self, node: ConditionalNode, key: str, path: list[str], scope: Scope, recorded: Recorded
    ) -> tuple[Graph, Scope]:
        graph, child = enter_branch(node, key, path, scope)
        if choose(node, scope) != key:
            raise NotReached(f"'{path[-1]}' chose another branch than '{key}'")
        return graph, child

    def pod(self, pod: Pod, node: ConditionalNode, path: list[str], scope: Scope) -> bool:
        """Choose the branch and output its index (Argo gates each branch on it)."""
        try:
            key = choose(node, scope)
        except PlanError as exc:
            pod.node_event(path, node.type, Status.FAILED, ConditionalInfo(error=str(exc)).to_json())
            pod.say(str(exc))
            return False
        pod.node_event(path, node.type, Status.RUNNING, ConditionalInfo(branch=key).to_json())
        pod.output("branch", str(list(node.branches).index(key)))
        return True
