"""Node kinds: one module each, found by a node's ``type`` in :data:`KINDS`.

| type        | module          | runs                            | in a pod                     |
|-------------|-----------------|---------------------------------|------------------------------|
| task        | ``task``        | the runner's ``run_task``       | one attempt                  |
| stub        | ``stub``        | recorded as succeeded           | recorded as succeeded        |
| parallel    | ``parallel``    | branches as concurrent jobs     | (a nested DAG, no pod)       |
| map         | ``map``         | items as jobs; policy; reduce   | verbs ``fan-out``, ``fan-in``|
| conditional | ``conditional`` | the chosen branch               | chooses, outputs the index   |
| loop        | ``loop``        | the branch until ``break_on``   | verb ``loop-check``          |
| success     | ``terminal``    | ends the graph                  | (an ``end`` task)            |
| fail        | ``terminal``    | ends the graph in failure       | says so, exits non-zero      |

Adding a built-in kind: its model in ``conveyor.spec.models`` (with its traits), its
module here and a line below, its ``render_<type>`` method in the Argo renderer, and its
tests. A plugin adds a kind without touching conveyor: a node model (a subclass of
``conveyor.spec.models.Linked`` with its traits) under the entry point group
``conveyor.kinds``, whose ``behaviour`` names its :class:`Kind` (``module:Class``).
"""

from __future__ import annotations

import importlib
import threading
from typing import Any

from conveyor.errors import ConveyorError
from conveyor.graph.kinds.base import Kind
from conveyor.graph.kinds.conditional import ConditionalKind
from conveyor.graph.kinds.info import Info
from conveyor.graph.kinds.loop import LoopKind
from conveyor.graph.kinds.map import MapKind
from conveyor.graph.kinds.parallel import ParallelKind
from conveyor.graph.kinds.stub import StubKind
from conveyor.graph.kinds.task import TaskKind
from conveyor.graph.kinds.terminal import TerminalKind
from conveyor.jsontypes import JSONObject
from conveyor.spec import kindreg
from conveyor.spec.kindreg import type_of
from conveyor.spec.models import NodeBase

KINDS: dict[str, Kind[Any]] = {
    "task": TaskKind(),
    "stub": StubKind(),
    "parallel": ParallelKind(),
    "map": MapKind(),
    "conditional": ConditionalKind(),
    "loop": LoopKind(),
    "success": TerminalKind(),
    "fail": TerminalKind(),
}


_lock = threading.Lock()


class KindError(ConveyorError):
    """A node model names no behaviour, or one that cannot be imported."""


def kind_of(node: NodeBase) -> Kind[Any]:
    """The behaviour of ``node``'s kind: a built-in one, or the one its model names."""
    kind = KINDS.get(getattr(node, "type", ""))
    return kind if kind is not None else _behaviour(type(node))


def kind_named(tag: str | None) -> Kind[Any] | None:
    """The behaviour of the kind a record's ``type`` names (None if none is known)."""
    kind = KINDS.get(tag or "")
    if kind is None and tag:
        model = kindreg.lookup(tag)
        kind = _behaviour(model) if model is not None else None
    return kind


def info_of(tag: str | None, data: JSONObject | None) -> Info:
    """A run record's info as its kind's typed record (the plain :class:`Info` for a kind
    this version does not know: its keys are kept, its summary is its error)."""
    kind = kind_named(tag)
    return (kind.info if kind is not None else Info).from_json(data)


def model_named(tag: str | None) -> type[NodeBase] | None:
    """The node model (its traits) of the kind a record's ``type`` names, if known."""
    return kindreg.lookup(tag) if tag else None


def _behaviour(model: type[NodeBase]) -> Kind[Any]:
    tag = type_of(model)
    with _lock:
        if tag in KINDS:
            return KINDS[tag]
        if not model.behaviour or ":" not in model.behaviour:
            raise KindError(f"node model {model.__name__} names no behaviour (`behaviour = 'module:Kind'`)")
        module, _, name = model.behaviour.partition(":")
        try:
            kind: Kind[Any] = getattr(importlib.import_module(module), name)()
        except (ImportError, AttributeError) as exc:
            raise KindError(f"cannot load {model.behaviour}, the behaviour of {tag} steps: {exc}") from exc
        KINDS[tag] = kind
        return kind


__all__ = ["KINDS", "Info", "Kind", "info_of", "kind_named", "kind_of", "model_named"]
