"""One step per process: the commands each pod of a transpiled workflow runs.

``run-start`` records the run; ``execute-single-node`` runs one task (or one map item's
task), a stub, a fail node, or a conditional's choice; ``fan-out`` records a map's items;
``fan-in`` reduces them; ``run-end`` records the final status. Each rebuilds what it needs
(parameters, the step) from the pipeline file and the run log: nothing large travels
through the orchestrator, only the run id, step paths and item indices.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conveyor.executors.engine import Engine, json_safe
from conveyor.executors.registry import build
from conveyor.executors.run import new_run_id, new_run_record
from conveyor.graph.plan import PlanError, choose_branch, map_items, reduce_values, returned_names
from conveyor.graph.replay import NotReached, Replay, node_at
from conveyor.graph.scope import Scope
from conveyor.runlog.base import RunLog, RunLogStore, RunNotFoundError, step_key
from conveyor.spec.config import RunConfig
from conveyor.spec.load import LoadedPipeline, load_config, load_parameters, load_pipeline
from conveyor.spec.models import ConditionalNode, FailNode, MapNode, StubNode, TaskNode
from conveyor.step.capture import routed
from conveyor.step.context import StepContext, path_slug
from conveyor.step.params import resolve_callable
from conveyor.step.partitions import (
    PartitionError,
    Partitions,
    ledger_prefix,
    mark_processed,
    plan,
    processed,
)

OUTPUTS_ENV = "CONVEYOR_OUTPUTS_DIR"
DEFAULT_OUTPUTS = "/tmp/conveyor-outputs"


class SingleNodeError(Exception):
    """The command cannot do its work (unknown run, changed pipeline, step not reachable)."""


def split_path(step: str) -> list[str]:
    return [part for part in step.split("/") if part != ""]


def write_output(name: str, value: str) -> None:
    """A small output for the orchestrator (an item count, a branch index)."""
    directory = Path(os.environ.get(OUTPUTS_ENV, DEFAULT_OUTPUTS))
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(value)


@dataclass
class RunContext:
    loaded: LoadedPipeline
    config: RunConfig
    store: RunLogStore
    context: StepContext
    log: RunLog

    @property
    def run_id(self) -> str:
        return str(self.log.run["run_id"])

    def replay(self, observe: Any = None) -> Replay:
        steps = self.log.steps

        def lookup(path: list[str]) -> dict[str, Any] | None:
            record = steps.get(step_key(path))
            if record is None:
                return None
            attempts = record.get("attempts") or [{}]
            return {**attempts[-1], "status": record["status"], "info": record.get("info") or {}}

        def restore(node: TaskNode, record: Any) -> dict[str, Any]:
            return self.context.restore(node, record)

        return Replay(lookup, restore, observe, self.items)

    def items(self, node: MapNode, path: list[str], scope: Scope) -> Sequence[Any]:
        """A map's items; for a partitioned map, the partitions its fan-out recorded."""
        if node.partition is None:
            return map_items(node, scope)
        info = (self.log.steps.get(step_key(path)) or {}).get("info") or {}
        if "manifest" not in info:
            raise NotReached(f"map '{'/'.join(path)}' has not planned its partitions yet (fan-out)")
        return Partitions.from_record(self.context.catalog, self.run_id, info)

    def scope_at(self, path: list[str]) -> Scope:
        initial = self.log.run.get("initial_parameters") or {}
        return self.replay().scope_at(self.loaded.pipeline, path, initial)

    def node_event(self, path: list[str], kind: str, status: str, info: dict[str, Any]) -> None:
        event = {"e": "node", "path": path, "type": kind, "status": status, "t": time.time(), "info": info}
        self.store.append(self.run_id, [event])


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


def open_run(run_id: str, file: str, config_file: str | None) -> RunContext:
    loaded = load_pipeline(file)
    config = load_config(config_file)
    store, context = _backends(config, run_id)
    try:
        log = store.load(run_id)
    except RunNotFoundError:
        raise SingleNodeError(
            f"run '{run_id}' has not been started: run 'conveyor run-start {run_id}' first"
        ) from None
    if log.run.get("pipeline_hash") != loaded.hash:
        raise SingleNodeError(
            f"{file} is not the pipeline run '{run_id}' started with (its hash differs); "
            "every step of a run must use the same pipeline file"
        )
    return RunContext(loaded, config, store, context, log)


def run_start(run_id: str | None, file: str, config_file: str | None, params_file: str | None) -> str:
    """Record the run (or mark it running again when the orchestrator retries it)."""
    loaded = load_pipeline(file)
    config = load_config(config_file)
    run_id = run_id or new_run_id()
    store, _ = _backends(config, run_id)
    try:
        run = store.load(run_id).run
        if run.get("pipeline_hash") != loaded.hash:
            raise SingleNodeError(f"run '{run_id}' exists with a different pipeline")
        run.update(status="running", ended_at=None, resumed=int(run.get("resumed") or 0) + 1)
    except RunNotFoundError:
        run = new_run_record(run_id, loaded, config, config_file, load_parameters(params_file))
        del run["pid"]  # this process only starts the run: its end says nothing
        run["orchestrator"] = "argo"
    store.save_run(run)
    return run_id


def execute_single_node(run_id: str, step: str, file: str, config_file: str | None) -> bool:
    """Run the node at ``step``; True if it succeeded."""
    ctx = open_run(run_id, file, config_file)
    path = split_path(step)
    if path and path[-1] == "fail" and _implicit(ctx, path):
        print(f"conveyor: {'/'.join(path[:-1]) or 'the pipeline'} reached fail")
        return False
    node = node_at(ctx.loaded.pipeline, path)
    try:
        scope = ctx.scope_at(path)
    except (NotReached, PlanError) as exc:
        raise SingleNodeError(str(exc)) from None
    if isinstance(node, StubNode):
        ctx.node_event(path, "stub", "succeeded", {})
        return True
    if isinstance(node, FailNode):
        print(f"conveyor: reached the fail step {step}")
        return False
    if isinstance(node, ConditionalNode):
        try:
            key, _ = choose_branch(node, scope.get(node.parameter), node.parameter in scope)
        except PlanError as exc:
            ctx.node_event(path, "conditional", "failed", {"error": str(exc)})
            print(f"conveyor: {exc}")
            return False
        ctx.node_event(path, "conditional", "running", {"branch": key})
        write_output("branch", str(list(node.branches).index(key)))
        return True
    if not isinstance(node, TaskNode):
        raise SingleNodeError(f"'{step}' is a {getattr(node, 'type', 'node')} step; it has no command to run")
    with routed():
        engine = Engine(ctx.log.run, ctx.store, ctx.context, _sequential, previous=ctx.log, one_attempt=True)
        return engine.run_task(node, path, scope)


def _implicit(ctx: RunContext, path: list[str]) -> bool:
    """Whether ``path`` ends in the implicit ``fail`` of its graph (no step declares it)."""
    if len(path) == 1:
        return "fail" not in ctx.loaded.pipeline.dag.steps
    parent = node_at(ctx.loaded.pipeline, path[:-2])
    if isinstance(parent, MapNode):
        return "fail" not in parent.branch.steps
    branches = getattr(parent, "branches", {})
    graph = branches.get(path[-2])
    return graph is not None and "fail" not in graph.steps


def _sequential(jobs: Any, count: int, limit: int | None) -> list[bool]:
    return [job() for job in jobs]


def _map_node(ctx: RunContext, path: list[str]) -> MapNode:
    node = node_at(ctx.loaded.pipeline, path)
    if not isinstance(node, MapNode):
        raise SingleNodeError(f"'{'/'.join(path)}' is not a map step")
    return node


def fan_out(run_id: str, step: str, file: str, config_file: str | None) -> int | None:
    """Record a map's items (planning partitions for a partitioned map); return their count,
    None if the map failed already. Writes ``count``, and ``indices`` (a JSON list) for the
    ``withParam`` of a partitioned map."""
    ctx = open_run(run_id, file, config_file)
    path = split_path(step)
    node = _map_node(ctx, path)
    try:
        scope = ctx.scope_at(path)
        if node.partition is None:
            count = len(map_items(node, scope))
            info: dict[str, Any] = {"items": count}
        else:
            values = scope.get(node.partition.parameter) if node.partition.parameter else None
            ledger = ledger_prefix(str(ctx.log.run.get("pipeline_name")), path_slug(path))
            skip = processed(ctx.context.catalog, ledger) if node.incremental else None
            parts, skipped = plan(
                node.partition, values, ctx.context.catalog, run_id, f"partitions/{path_slug(path)}", skip
            )
            count = len(parts)
            info = {**parts.record(), "items": count, "skipped": skipped}
    except (PlanError, PartitionError) as exc:
        ctx.node_event(path, "map", "failed", {"error": str(exc)})
        print(f"conveyor: {exc}")
        write_output("count", "0")
        write_output("indices", "[]")
        return None
    except NotReached as exc:
        raise SingleNodeError(str(exc)) from None
    ctx.node_event(path, "map", "running", info)
    write_output("count", str(count))
    write_output("indices", json.dumps(list(range(count))))
    return count


def fan_in(run_id: str, step: str, file: str, config_file: str | None) -> bool:
    """Reduce a map's items from their records; record the map's outcome."""
    ctx = open_run(run_id, file, config_file)
    path = split_path(step)
    node = _map_node(ctx, path)
    try:
        scope = ctx.scope_at(path)
        items = ctx.items(node, path, scope)
    except (PlanError, NotReached) as exc:
        ctx.node_event(path, "map", "failed", {"error": str(exc)})
        return False
    replay = ctx.replay()
    kept: list[dict[str, Any]] = []
    failed: list[int] = []
    ledger = ledger_prefix(str(ctx.log.run.get("pipeline_name")), path_slug(path))
    for index in range(len(items)):
        child = Scope(scope, {node.iterate_as: items[index]})
        if replay.graph(node.branch, [*path, str(index)], child) is not True:
            failed.append(index)
            continue
        kept.append(child.own)
        if node.incremental and isinstance(items, Partitions):
            mark_processed(ctx.context.catalog, ledger, run_id, index, items.files(index))
    info: dict[str, Any] = {"items": len(items), "failed": len(failed)}
    if failed:
        info["failed_items"] = failed[:1000]
        if node.on_item_failure == "fail":
            ctx.node_event(path, "map", "failed", info)
            return False
    try:
        reducer = resolve_callable(node.reducer) if node.reducer else None
        info["returns"] = reduce_values(returned_names(node.branch), kept, reducer)
    except Exception as exc:  # a failing reducer fails the map, with its error
        info["error"] = f"reducer {node.reducer} failed: {type(exc).__name__}: {exc}"
        ctx.node_event(path, "map", "failed", info)
        return False
    ctx.node_event(path, "map", "succeeded", info)
    return True


def run_end(run_id: str, orchestrator_status: str, file: str, config_file: str | None) -> str:
    """Record the final status the orchestrator reports, with the final parameters."""
    ctx = open_run(run_id, file, config_file)
    scope = Scope(None, ctx.log.run.get("initial_parameters") or {})
    # Parallel and conditional steps have no pod that ends them: record their outcome here.
    finished: list[dict[str, Any]] = []

    def observe(path: list[str], kind: str, ok: bool, info: dict[str, Any]) -> None:
        record = ctx.log.steps.get(step_key(path))
        if record is None or record["status"] not in ("succeeded", "failed"):
            status = "succeeded" if ok else "failed"
            finished.append(
                {"e": "node", "path": path, "type": kind, "status": status, "t": time.time(), "info": info}
            )

    replayed = ctx.replay(observe).graph(ctx.loaded.pipeline.dag, [], scope)
    if finished:
        ctx.store.append(run_id, finished)
    status = "succeeded" if orchestrator_status.lower() == "succeeded" else "failed"
    run = dict(ctx.log.run)
    run.update(
        status=status,
        ended_at=time.time(),
        final_parameters=json_safe({**(run.get("initial_parameters") or {}), **scope.own}),
        orchestrator_status=orchestrator_status,
        replayed_status={True: "succeeded", False: "failed", None: "unfinished"}[replayed],
    )
    ctx.store.save_run(run)
    return status
