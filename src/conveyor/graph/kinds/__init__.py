"""Node kinds: one module each, found by a node's ``type`` in :data:`KINDS`.

| type        | module          | runs                            | in a pod                     |
|-------------|-----------------|---------------------------------|------------------------------|
| task        | ``task``        | the runner's ``run_task``       | one attempt                  |
| stub        | ``stub``        | recorded as succeeded           | recorded as succeeded        |
| parallel    | ``parallel``    | branches as concurrent jobs     | (a nested DAG, no pod)       |
| map         | ``map``         | items as jobs; policy; reduce   | ``fan-out`` / ``fan-in``     |
| conditional | ``conditional`` | the chosen branch               | chooses, outputs the index   |
| loop        | ``loop``        | the branch until ``break_on``   | ``loop-check`` per iteration |
| success     | ``terminal``    | ends the graph                  | (an ``end`` task)            |
| fail        | ``terminal``    | ends the graph in failure       | says so, exits non-zero      |

Adding a kind: its model in ``conveyor.spec.models``, its module here and a line below,
its ``render_<type>`` method in the Argo renderer, and its tests.
"""

from __future__ import annotations

from conveyor.graph.kinds.base import Kind
from conveyor.graph.kinds.conditional import ConditionalKind
from conveyor.graph.kinds.loop import LoopKind
from conveyor.graph.kinds.map import MapKind
from conveyor.graph.kinds.parallel import ParallelKind
from conveyor.graph.kinds.stub import StubKind
from conveyor.graph.kinds.task import TaskKind
from conveyor.graph.kinds.terminal import TerminalKind
from conveyor.spec.models import NodeBase

KINDS: dict[str, Kind] = {
    "task": TaskKind(),
    "stub": StubKind(),
    "parallel": ParallelKind(),
    "map": MapKind(),
    "conditional": ConditionalKind(),
    "loop": LoopKind(),
    "success": TerminalKind(),
    "fail": TerminalKind(),
}


def kind_of(node: NodeBase) -> Kind:
    """The behaviour of ``node``'s kind."""
    return KINDS[getattr(node, "type", "task")]


__all__ = ["KINDS", "Kind", "kind_of"]
