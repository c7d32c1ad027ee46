"""``loop``: the branch again and again (do-while), each iteration under its own path part
(``loop/0/step``, ``loop/1/step``...). Written once: in-process runs iterate here, and a
pod's ``loop-check`` (after each iteration on Argo) asks :func:`verdict` the same question.

Each iteration sees the parameters the previous one left (the first: the loop's own), and
its index as the parameter and environment variable ``index_as``. After the loop, the last
iteration's parameters are the parent's, whether the loop ended well or not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from conveyor.graph.kinds.base import Composite, NotReached, PlanError, Pod, Recorded, Walker
from conveyor.graph.kinds.info import Info, _then
from conveyor.graph.scope import Scope
from conveyor.runlog.records import Status
from conveyor.spec.models import Graph, LoopNode


def iteration_scope(node: LoopNode, carry: Scope, index: int) -> Scope:
    """The scope iteration ``index`` runs in: what the iterations before left, and its index.
    The index sits in a layer of its own, under the scope the iteration's steps write to, so
    that what they return is told apart from it, even a value of the index's name."""
    indexed = Scope(carry, {node.index_as: index}, env={node.index_as: str(index)})
    return Scope(indexed)


def keep(node: LoopNode, carry: Scope, child: Scope) -> None:
    """What an iteration's steps returned becomes the next one's (its index is not carried on,
    unless a step returned a value of that name: runnable's loops hand it on)."""
    carry.update(child.own)


@dataclass
class Verdict:
    """What an iteration's end means: go on, or stop (and whether the loop succeeded)."""

    again: bool
    ok: bool
    info: LoopInfo


def verdict(node: LoopNode, index: int, succeeded: bool, carry: Scope) -> Verdict:
    """After iteration ``index``: a failed iteration fails the loop; ``break_on`` true ends it
    well; the last allowed iteration ends it as ``on_max_iterations`` says; else, again.
    ``break_on`` not set yet means "not done"; set to anything but a boolean is an error."""
    info = LoopInfo(iterations=index + 1)
    if not succeeded:
        info.failed_iteration = index
        return Verdict(False, False, info)
    value = carry.get(node.break_on)
    if node.break_on in carry and not isinstance(value, bool):
        info.error = (
            f"break_on parameter '{node.break_on}' must be true or false; "
            f"iteration {index} set it to {type(value).__name__} {value!r}"
        )
        return Verdict(False, False, info)
    if value is True:
        info.ended = "break"
        return Verdict(False, True, info)
    if index + 1 >= node.max_iterations:
        info.ended = "max_iterations"
        if node.on_max_iterations == "fail":
            info.error = (
                f"loop reached max_iterations ({node.max_iterations}) without '{node.break_on}' "
                "becoming true (on_max_iterations: fail)"
            )
            return Verdict(False, False, info)
        return Verdict(False, True, info)
    return Verdict(True, True, info)


def replay_iterations(
    recorded: Recorded, node: LoopNode, path: list[str], scope: Scope, count: int
) -> tuple[Scope, bool | None]:
    """The carried scope after iterations ``0..count-1`` as recorded, and whether the last of
    them succeeded (None: one has not finished)."""
    carry = Scope(scope)
    result: bool | None = True
    for index in range(count):
        child = iteration_scope(node, carry, index)
        result = recorded.graph(node.branch, [*path, str(index)], child)
        keep(node, carry, child)
        if result is None:
            return carry, None
    return carry, result


@dataclass(kw_only=True)
class LoopInfo(Info):
    """A loop's record: iterations run, how it ended (``break``, ``max_iterations``), and
    the iteration that failed, if one did."""

    KEYS: ClassVar[tuple[str, ...]] = ("iterations", "ended", "failed_iteration", "error")
    ENDED: ClassVar[dict[str, str]] = {
        "break": "ended by break_on",
        "max_iterations": "reached max_iterations",
    }

    iterations: int | None = None
    ended: str | None = None
    failed_iteration: int | None = None

    def summary(self, error: str | None = None) -> str:
        detail = super().summary(error)
        if self.iterations is None:
            return detail
        how = self.ENDED.get(str(self.ended), "")
        if self.failed_iteration is not None:
            how = f"iteration {self.failed_iteration} failed"
        return _then(f"{self.iterations} iterations" + (f", {how}" if how else ""), detail)

    def label(self) -> str:
        return f"{self.iterations} iterations" if self.iterations else ""

    def state(self) -> dict[str, int | str | None]:
        return {"iterations": self.iterations}


class LoopKind(Composite[LoopNode]):
    """Iterations run one after the other; on resume, finished ones replay from the run log
    (their tasks are reused), so the loop goes on inside the iteration that failed."""

    info = LoopInfo
    verbs: ClassVar[dict[str, tuple[str, ...]]] = {"loop-check": ("again", "next")}

    def body(self, walker: Walker, node: LoopNode, path: list[str], scope: Scope, info: LoopInfo) -> bool:
        carry = Scope(scope)
        try:
            index = 0
            while True:
                child = iteration_scope(node, carry, index)
                ok = walker.run_graph(node.branch, [*path, str(index)], child)
                keep(node, carry, child)
                outcome = verdict(node, index, ok, carry)
                info.take(outcome.info)
                if not outcome.again:
                    if outcome.info.error is not None:
                        raise PlanError(outcome.info.error)
                    return outcome.ok
                walker.runner.node_event(path, node.type, Status.RUNNING, outcome.info.to_json())
                index += 1
        finally:
            scope.update(carry.own)

    def replay(self, recorded: Recorded, node: LoopNode, path: list[str], scope: Scope) -> bool | None:
        record = recorded.record(path)
        if record is None or not record.status.finished:
            return None
        count = LoopInfo.from_json(record.info).iterations or 0
        carry, _ = replay_iterations(recorded, node, path, scope, count)
        scope.update(carry.own)
        ok = record.status is Status.SUCCEEDED
        if recorded.observe:
            recorded.observe(path, node.type, ok, dict(record.info))
        return ok

    def enter(
        self, node: LoopNode, key: str, path: list[str], scope: Scope, recorded: Recorded
    ) -> tuple[Graph, Scope]:
        if not (key.isascii() and key.isdigit()):
            raise NotReached(f"'{key}' is not an iteration index of loop '{path[-1]}'")
        index = int(key)
        if index >= node.max_iterations:
            raise NotReached(f"loop '{path[-1]}' runs at most {node.max_iterations} iterations")
        carry, last = replay_iterations(recorded, node, path, scope, index)
        if last is None:
            raise NotReached(f"iteration {index - 1} of loop '{path[-1]}' has not finished")
        return node.branch, iteration_scope(node, carry, index)

    def verb(self, pod: Pod, name: str, node: LoopNode, path: list[str], index: int | None) -> bool:
        """``loop-check``, after iteration ``index`` (the step is ``LOOP/N``): replay the
        iterations so far and decide, as the in-process loop does, whether another follows;
        record the loop's progress or its end; output ``again`` and ``next`` (N+1)."""
        if name != "loop-check":
            return super().verb(pod, name, node, path, index)
        if index is None:
            raise NotReached(f"'{'/'.join(path)}' does not name an iteration (LOOP/N)")
        scope = pod.scope_at(path)
        carry, last = replay_iterations(pod.recorded(), node, path, scope, index + 1)
        outcome = verdict(node, index, last is True, carry)
        status = Status.RUNNING if outcome.again else Status.SUCCEEDED if outcome.ok else Status.FAILED
        pod.node_event(path, node.type, status, outcome.info.to_json())
        if outcome.info.error is not None:
            pod.say(outcome.info.error)
        pod.output("again", "true" if outcome.again else "false")
        pod.output("next", str(index + 1))
        return outcome.ok
