"""One step per process: the commands each pod of a transpiled workflow runs.

``run-start`` records the run; ``execute-single-node`` does what the node's kind does in a
pod (a task's attempt, a stub, a fail, a conditional's choice); ``kind-verb VERB`` does a
kind's orchestrator-side verb (a map's ``fan-out`` and ``fan-in``, a loop's ``loop-check``),
written in the kind's module; ``run-end`` records the final status. Each
rebuilds what it needs (parameters, the step) from the pipeline file and the run log:
nothing large travels through the orchestrator, only the run id, step paths and item
indices. The contract with the orchestrator (subcommands, outputs) is :data:`POD_CONTRACT`.
"""

from __future__ import annotations

import os
import pickle
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conveyor.errors import ConveyorError
from conveyor.executors.contract import POD_CONTRACT
from conveyor.executors.engine import Engine, json_safe
from conveyor.executors.mapitems import MapItems
from conveyor.executors.registry import build
from conveyor.executors.run import new_run_record
from conveyor.graph.kinds import kind_of
from conveyor.graph.kinds.base import NotReached, Observe, PlanError, Pod
from conveyor.graph.replay import Replay, node_at
from conveyor.graph.scope import Scope
from conveyor.jsontypes import JSONObject
from conveyor.runlog.base import RunExistsError, RunLog, RunLogStore, RunNotFoundError
from conveyor.runlog.endings import end_run
from conveyor.runlog.records import Attempt, NodeEvent, RunRecord, Status, new_run_id
from conveyor.spec.config import RunConfig
from conveyor.spec.load import LoadedPipeline, load_config, load_parameters, load_pipeline
from conveyor.spec.models import MapNode, NodeBase, TaskNode
from conveyor.step.cache import StepCache
from conveyor.step.capture import routed
from conveyor.step.context import StepContext
from conveyor.step.params import resolve_callable


class PodError(ConveyorError):
    """The command cannot do its work (unknown run, changed pipeline, step not reachable)."""


def split_path(step: str) -> list[str]:
    """A step path from its ``/``-joined text (map items by index)."""
    return [part for part in step.split("/") if part != ""]


def write_output(name: str, value: str) -> None:
    """A small output for the orchestrator (an item count, a branch index)."""
    directory = Path(os.environ.get(POD_CONTRACT.outputs_env, POD_CONTRACT.outputs_dir))
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(value)


@dataclass
class RunContext:
    """A run as one pod sees it: the pipeline, the backends and the run log so far."""

    loaded: LoadedPipeline
    store: RunLogStore
    context: StepContext
    log: RunLog

    @property
    def run_id(self) -> str:
        return self.log.run.run_id

    @property
    def maps(self) -> MapItems:
        return MapItems(self.context.catalog, self.run_id, self.log.run.pipeline_name)

    def replay(self, observe: Observe | None = None) -> Replay:
        return Replay(self.log.steps, self._restore, observe, self.items)

    def _restore(self, node: TaskNode, attempt: Attempt) -> dict[str, object]:
        try:
            return self.context.restore(node, attempt)
        except (OSError, EOFError, pickle.UnpicklingError) as exc:
            raise PodError(f"an earlier step's returns cannot be read back: {exc}") from None

    def items(self, node: MapNode, path: list[str], scope: Scope) -> Sequence[Any]:
        """A map's items; for a partitioned map, the partitions its fan-out recorded."""
        record = self.log.step(path)
        return self.maps.recorded(node, path, scope, record.info if record else {})

    def scope_at(self, path: list[str]) -> Scope:
        return self.replay().scope_at(self.loaded.pipeline, path, self.log.run.initial_parameters)

    def node_event(self, path: list[str], kind: str, status: Status, info: JSONObject) -> None:
        """Record a node's status, with its info (the run log's JSON)."""
        self.store.append(self.run_id, [NodeEvent(path, kind, status, time.time(), info)])


class _PodSide(Pod):
    """What a kind's ``pod`` method works with (the :class:`~conveyor.graph.kinds.base.Pod`)."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx

    def run_task(self, node: TaskNode, path: list[str], scope: Scope) -> bool:
        ctx = self.ctx
        with routed():
            engine = Engine(
                ctx.log.run, ctx.store, ctx.context, _sequential, previous=ctx.log, one_attempt=True
            )
            try:
                return engine.run_task(node, path, scope)
            finally:
                engine.flush_records()  # relaxed durability holds events until written

    def node_event(self, path: list[str], kind: str, status: Status, info: JSONObject) -> None:
        self.ctx.node_event(path, kind, status, info)

    def output(self, name: str, value: str) -> None:
        write_output(name, value)

    def say(self, message: str) -> None:
        print(f"conveyor: {message}")

    def scope_at(self, path: list[str]) -> Scope:
        return self.ctx.scope_at(path)

    def recorded(self) -> Replay:
        return self.ctx.replay()

    def plan(self, node: MapNode, path: list[str], scope: Scope) -> tuple[Sequence[Any], JSONObject]:
        return self.ctx.maps.plan(node, path, scope)

    def items(self, node: MapNode, path: list[str], scope: Scope) -> Sequence[Any]:
        return self.ctx.items(node, path, scope)

    def item_done(self, node: MapNode, path: list[str], index: int, items: Sequence[Any]) -> None:
        self.ctx.maps.done(node, path, index, items)

    def resolve(self, dotted: str) -> Callable[..., Any]:
        return resolve_callable(dotted)


def _backends(config: RunConfig, run_id: str) -> tuple[RunLogStore, StepContext]:
    store: RunLogStore = build("conveyor.run_log_stores", config.run_log_store)
    context = StepContext(
        run_id,
        build("conveyor.catalogs", config.catalog),
        build("conveyor.secrets", config.secrets),
        Path.cwd(),
        echo=routed.console(),
    )
    return store, context


def importable(file: str) -> None:
    """Put the pipeline file's folder and the working directory on the import path, as an
    in-process run does: a pod started through the ``conveyor`` entry point (what an image
    with conveyor installed runs) has neither there, unlike ``python -m conveyor.cli``, and
    could not import the functions that sit beside the pipeline."""
    for place in (os.getcwd(), os.path.dirname(os.path.abspath(file))):
        if place not in sys.path:
            sys.path.insert(0, place)


def open_run(run_id: str, file: str, config_file: str | None) -> RunContext:
    """The run a pod works on; PodError if it was not started, or with another pipeline."""
    importable(file)
    loaded = load_pipeline(file)
    config = load_config(config_file)
    store, context = _backends(config, run_id)
    try:
        log = store.load(run_id)
    except RunNotFoundError:
        raise PodError(
            f"run '{run_id}' has not been started: run 'conveyor run-start {run_id}' first"
        ) from None
    if log.run.pipeline_hash != loaded.hash:
        raise PodError(
            f"{file} is not the pipeline run '{run_id}' started with (its hash differs); "
            "every step of a run must use the same pipeline file"
        )
    # A pod looks its step up in the cache before running it, as an in-process run does.
    context.cache = StepCache(context.catalog, loaded.pipeline.dag.cache)
    context.pipeline = loaded.name
    return RunContext(loaded, store, context, log)


def run_start(run_id: str | None, file: str, config_file: str | None, params_file: str | None) -> str:
    """Record the run (or mark it running again when the orchestrator retries it)."""
    importable(file)
    loaded = load_pipeline(file)
    config = load_config(config_file)
    run_id = run_id or new_run_id()
    store, _ = _backends(config, run_id)
    try:
        run = store.load(run_id).run
        if run.pipeline_hash != loaded.hash:
            raise PodError(f"run '{run_id}' exists with a different pipeline")
        run.status, run.ended_at, run.resumed = Status.RUNNING, None, run.resumed + 1
    except RunNotFoundError:
        run = new_run_record(run_id, loaded, config, config_file, load_parameters(params_file))
        run.pid = None  # this process only starts the run: its end says nothing
        run.orchestrator = "argo"
        try:
            store.save_run(run, create=True)
        except RunExistsError:  # another run-start of the same run won the race: resume that one
            return run_start(run_id, file, config_file, params_file)
        return run_id
    store.save_run(run)
    return run_id


def execute_single_node(run_id: str, step: str, file: str, config_file: str | None) -> bool:
    """Do what the node at ``step`` does in a pod; True if it succeeded."""
    ctx = open_run(run_id, file, config_file)
    path = split_path(step)
    node = node_at(ctx.loaded.pipeline, path)
    try:
        scope = ctx.scope_at(path)
    except (NotReached, PlanError) as exc:
        raise PodError(str(exc)) from None
    return bool(kind_of(node).pod(_PodSide(ctx), node, path, scope))


def _sequential(jobs: Any, count: int, limit: int | None) -> list[bool]:
    return [job() for job in jobs]


def _verb_node(ctx: RunContext, path: list[str]) -> tuple[NodeBase, list[str], int | None]:
    """The node a verb's step names, its path, and the item or iteration index after it
    (``LOOP/N``), if the step ends with one."""
    try:
        return node_at(ctx.loaded.pipeline, path), path, None
    except NotReached:
        if len(path) < 2 or not (path[-1].isascii() and path[-1].isdigit()):
            raise
    return node_at(ctx.loaded.pipeline, path[:-1]), path[:-1], int(path[-1])


def kind_verb(verb: str, run_id: str, step: str, file: str, config_file: str | None) -> bool:
    """Do a kind's orchestrator-side ``verb`` for the node at ``step``; True if it succeeded."""
    ctx = open_run(run_id, file, config_file)
    try:
        node, path, index = _verb_node(ctx, split_path(step))
        kind = kind_of(node)
        if verb not in kind.verbs:
            known = ", ".join(kind.verbs) or "none"
            kind_name = getattr(node, "type", "?")
            raise PodError(f"'{step}' is a {kind_name} step; its verbs: {known}, not '{verb}'")
        return bool(kind.verb(_PodSide(ctx), verb, node, path, index))
    except (NotReached, PlanError) as exc:
        raise PodError(str(exc)) from None


def run_end(run_id: str, orchestrator_status: str, file: str, config_file: str | None) -> Status:
    """Record the final status the orchestrator reports, with the final parameters."""
    ctx = open_run(run_id, file, config_file)
    scope = Scope(None, ctx.log.run.initial_parameters)
    # Parallel and conditional steps have no pod that ends them: record their outcome here.
    finished: list[NodeEvent] = []

    def observe(path: list[str], kind: str, ok: bool, info: JSONObject) -> None:
        record = ctx.log.step(path)
        if record is None or not record.status.finished:
            status = Status.SUCCEEDED if ok else Status.FAILED
            finished.append(NodeEvent(path, kind, status, time.time(), info))

    replayed = ctx.replay(observe).graph(ctx.loaded.pipeline.dag, [], scope)
    if finished:
        ctx.store.append(run_id, finished)
    run: RunRecord = ctx.log.run
    succeeded = orchestrator_status.lower() == Status.SUCCEEDED
    run.status = Status.SUCCEEDED if succeeded else Status.FAILED
    run.ended_at = time.time()
    run.final_parameters = json_safe({**run.initial_parameters, **scope.own})
    run.orchestrator_status = orchestrator_status
    run.replayed_status = {True: Status.SUCCEEDED, False: Status.FAILED, None: "unfinished"}[replayed]
    if run.cancel_requested is not None and not succeeded:
        # Stopped on request: the orchestrator says only "Failed"; the steps it cut off
        # close as cancelled (read afresh, with the outcomes just recorded).
        fresh = ctx.store.load(run_id)
        fresh.run = run
        end_run(ctx.store, fresh, Status.CANCELLED, "cancelled: the workflow was stopped on request")
        return run.status
    ctx.store.save_run(run)
    return run.status
