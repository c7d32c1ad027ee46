"""What a node kind is: how it runs, how it replays from the run log, how it is entered,
and what a pod does for it; and what each of those needs from its caller.

Each kind is one module of this package; :data:`conveyor.graph.kinds.KINDS` maps a node's
``type`` to it. Traversal (in-process runs), replay (pods rebuilding parameters), the pod
commands and the Argo renderer all dispatch through that table, so a kind's meaning is
written once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from conveyor.errors import ConveyorError
from conveyor.graph.kinds.info import Info
from conveyor.graph.scope import Scope
from conveyor.jsontypes import JSONObject
from conveyor.runlog.records import Attempt, Status, StepRecord
from conveyor.spec.models import Graph, MapNode, NodeBase, TaskNode

Job = Callable[[], bool]
#: A map's items (the list parameter, or the partitions of its source).
Items = Callable[[MapNode, list[str], Scope], Sequence[Any]]
#: Told the outcome of each composite node replayed (path, kind, success, info).
Observe = Callable[[list[str], str, bool, JSONObject], None]


class PlanError(Exception):
    """A composite node cannot proceed: a missing parameter, no branch matching, not a list.
    It fails that node (its ``on_failure`` takes over), not the run's machinery."""


class NotReached(ConveyorError):
    """A step path cannot be reached from what has been recorded so far (or names nothing)."""


class Runner(Protocol):
    """What an executor gives traversal: how a task runs and how independent jobs run."""

    def run_task(self, node: TaskNode, path: list[str], scope: Scope) -> bool:
        """Run (or, on resume, reuse) one task; put its returns into ``scope``."""

    def run_jobs(self, jobs: Iterable[Job], count: int, limit: int | None) -> list[bool]:
        """Run independent jobs, at most ``limit`` at once; results in job order."""

    def run_items(
        self,
        node: MapNode,
        path: list[str],
        scope: Scope,
        items: Sequence[Any],
        values: list[dict[str, object]],
        general: Callable[[int], bool],
    ) -> list[bool]:
        """Run a map's items, at most ``node.max_parallelism`` at once; results in item order.
        ``general(i)`` runs item ``i`` through the walk (its values into ``values[i]``); a
        runner may run items its own way when that means the same (the engine's lean path)."""

    def node_event(self, path: list[str], kind: str, status: Status, info: JSONObject) -> None:
        """Record a composite or stub node's progress (``info``: its kind's :meth:`Info.to_json`)."""

    def resolve(self, dotted: str) -> Callable[..., Any]:
        """Import a function named by a dotted path (a map's reducer)."""

    def item_done(self, node: MapNode, path: list[str], ok: bool) -> None:
        """A map item finished (progress displays; incremental ledgers)."""

    def items(self, node: MapNode, path: list[str], scope: Scope) -> Sequence[Any]:
        """A map's items: the list parameter's values, or the partitions of its source."""


class Walker(Protocol):
    """Traversal, as a kind sees it."""

    runner: Runner

    def run_graph(self, graph: Graph, prefix: list[str], scope: Scope) -> bool:
        """Run a graph (a branch, an item) to its end; True if it ended in success."""


class Recorded(Protocol):
    """Replay, as a kind sees it: the run log's records and the walk over them."""

    observe: Observe | None

    def record(self, path: list[str]) -> StepRecord | None:
        """What the run log holds for ``path``, if anything."""

    def restore(self, node: TaskNode, attempt: Attempt) -> Mapping[str, object]:
        """The values a succeeded attempt put into its scope (objects unpickled)."""

    def items(self, node: MapNode, path: list[str], scope: Scope) -> Sequence[Any]:
        """A map's items as planned for this run."""

    def graph(self, graph: Graph, prefix: list[str], scope: Scope) -> bool | None:
        """Replay a whole graph: True/False when it has ended, None if it has not."""


class Pod(Protocol):
    """What ``conveyor execute-single-node`` gives a kind: one step, in a process of its own."""

    def run_task(self, node: TaskNode, path: list[str], scope: Scope) -> bool:
        """One attempt of the task (the orchestrator makes further ones)."""

    def node_event(self, path: list[str], kind: str, status: Status, info: JSONObject) -> None:
        """Record a node's status."""

    def output(self, name: str, value: str) -> None:
        """A small output for the orchestrator (a branch index)."""

    def say(self, message: str) -> None:
        """A line for the pod's log."""

    def scope_at(self, path: list[str]) -> Scope:
        """The parameters the node at ``path`` runs with, replayed from the run log."""

    def recorded(self) -> Recorded:
        """The run log's records, for replaying what items and iterations left."""

    def plan(self, node: MapNode, path: list[str], scope: Scope) -> tuple[Sequence[Any], JSONObject]:
        """A map's items, planned (partitions listed) once per run, and what its record keeps."""

    def items(self, node: MapNode, path: list[str], scope: Scope) -> Sequence[Any]:
        """A map's items as planned earlier in the run."""

    def item_done(self, node: MapNode, path: list[str], index: int, items: Sequence[Any]) -> None:
        """An item of a map succeeded (incremental ledgers)."""

    def resolve(self, dotted: str) -> Callable[..., Any]:
        """Import a function named by a dotted path (a map's reducer)."""


#: The node model a kind is the behaviour of.
NodeT = TypeVar("NodeT", bound=NodeBase)


class Kind(Generic[NodeT]):
    """One node kind's behaviour, over its node model (``MapKind`` is a ``Kind[MapNode]``: its
    methods are handed map nodes, and a type checker holds them to it). The defaults are those
    of a node with nothing inside it."""

    #: The record of what its run record keeps beside the status.
    info: type[Info] = Info
    #: What the orchestrator asks of it beside running its step (``conveyor kind-verb VERB
    #: RUN STEP``), each verb with the outputs it writes for the orchestrator.
    verbs: ClassVar[dict[str, tuple[str, ...]]] = {}

    def run(self, walker: Walker, node: NodeT, path: list[str], scope: Scope) -> bool:
        """Run the node in this process (with the walker's runner); True if it succeeded."""
        raise PlanError(f"cannot run a {getattr(node, 'type', 'node')} step")

    def replay(self, recorded: Recorded, node: NodeT, path: list[str], scope: Scope) -> bool | None:
        """Apply a finished node's recorded values to ``scope``; its success, None if unfinished."""
        return None

    def enter(
        self, node: NodeT, key: str, path: list[str], scope: Scope, recorded: Recorded
    ) -> tuple[Graph, Scope]:
        """The graph and scope that a step path part ``key`` after this node leads into."""
        raise NotReached(f"'{path[-1]}' has no steps inside it")

    def pod(self, pod: Pod, node: NodeT, path: list[str], scope: Scope) -> bool:
        """What ``execute-single-node`` does for this node; True if it succeeded."""
        raise NotReached(
            f"'{'/'.join(path)}' is a {getattr(node, 'type', 'node')} step; it has no command to run"
        )

    def render(self, renderer: Any, name: str, here: str, node: NodeT, static: list[str], namer: Any) -> Any:
        """A plugin kind's Argo rendering: its DAG tasks and how they link, built with the
        renderer's helpers (``render_repeat``, ``dag_template``, ``verb_template``); None if
        it has none. Built-in kinds render in the renderer's ``render_<type>`` methods."""
        return None

    def verb(self, pod: Pod, name: str, node: NodeT, path: list[str], index: int | None) -> bool:
        """Do the orchestrator-side verb ``name`` (one of :attr:`verbs`) for the node at
        ``path``; ``index`` is the item or iteration the step path named after it, if any.
        True if it succeeded (the pod exits 0)."""
        raise NotReached(f"a {getattr(node, 'type', 'node')} step has no verb '{name}'")


class Composite(Kind[NodeT]):
    """A node holding graphs: recorded as running, then as succeeded or failed with its info.
    A :class:`PlanError` fails the node with its message."""

    def run(self, walker: Walker, node: NodeT, path: list[str], scope: Scope) -> bool:
        kind = str(getattr(node, "type", ""))
        walker.runner.node_event(path, kind, Status.RUNNING, {})
        info = self.info()
        try:
            ok = self.body(walker, node, path, scope, info)
        except PlanError as exc:
            info.error = str(exc)
            ok = False
        walker.runner.node_event(path, kind, Status.SUCCEEDED if ok else Status.FAILED, info.to_json())
        return ok

    def body(self, walker: Walker, node: NodeT, path: list[str], scope: Scope, info: Any) -> bool:
        """What the node does between running and its end; ``info`` (the kind's record, an
        :class:`Info`) goes into its record."""
        raise NotImplementedError


def enter_branch(node: Any, key: str, path: list[str], scope: Scope) -> tuple[Graph, Scope]:
    """The branch ``key`` of a node with ``branches``, in a scope of its own."""
    if key not in node.branches:
        raise NotReached(f"no branch '{key}' in '{path[-1]}'")
    return node.branches[key], Scope(scope)


def finished(record: StepRecord | None) -> bool:
    """Whether a record says its node is done (succeeded, failed or cancelled)."""
    return record is not None and record.status.finished


def merge(scope: Scope, children: Iterable[Scope]) -> None:
    """Children's own values into ``scope``, in order: later ones win on clashes."""
    for child in children:
        scope.update(child.own)
