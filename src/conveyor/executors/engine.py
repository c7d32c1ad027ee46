"""The run engine: traversal bound to a run log, a step context and a way to run jobs.

It records every attempt (start and end events appended to the run log), retries with
backoff, reuses succeeded steps when a run is resumed, and writes the run record at the
start and the end. Executors differ only in how jobs run concurrently and where a command
runs; that is what they pass in.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from conveyor.graph.plan import PlanError, map_items
from conveyor.graph.scope import Scope
from conveyor.graph.traverse import Job, Traversal
from conveyor.runlog.base import RunLog, RunLogStore, step_key
from conveyor.spec.models import MapNode, Pipeline, TaskNode
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

START_DELAY = 0.25
JobRunner = Callable[[Iterable[Job], int, int | None], list[bool]]


def json_safe(values: dict[str, Any]) -> dict[str, Any]:
    """Parameters as the run log keeps them: JSON values, others by their repr."""
    out = {}
    for name, value in values.items():
        try:
            json.dumps(value)
            out[name] = value
        except (TypeError, ValueError):
            out[name] = {"$repr": repr(value)[:200], "$type": type(value).__name__}
    return out


class Engine:
    def __init__(
        self,
        run: dict[str, Any],
        store: RunLogStore,
        context: StepContext,
        jobs: JobRunner,
        previous: RunLog | None = None,
        observer: Any = None,
        task_slots: int | None = None,
        one_attempt: bool = False,
    ) -> None:
        self.run = run
        self.run_id = str(run["run_id"])
        self.store = store
        self.context = context
        self.jobs = jobs
        self.previous = previous
        self.observer = observer
        # In a pod, Argo's retryStrategy makes the further attempts: run just one here.
        self.one_attempt = one_attempt
        self._slots = threading.BoundedSemaphore(task_slots) if task_slots else None
        # Start events wait here and go out with their end event in one write; a flusher
        # writes those of steps still running after START_DELAY, so `runs show` sees them.
        self._starts: dict[str, dict[str, Any]] = {}
        self._starts_lock = threading.Lock()
        self._stopped = threading.Event()
        self._partitioned: dict[tuple[str, ...], tuple[MapNode, Partitions, str]] = {}

    # --- Runner protocol -------------------------------------------------------------------

    def run_jobs(self, jobs: Iterable[Job], count: int, limit: int | None) -> list[bool]:
        return self.jobs(jobs, count, limit)

    def resolve(self, dotted: str) -> Callable[..., Any]:
        return resolve_callable(dotted)

    def item_done(self, path: list[str], ok: bool) -> None:
        planned = self._partitioned.get(tuple(path[:-1]))
        if ok and planned is not None and planned[0].incremental:
            _, parts, ledger = planned
            mark_processed(parts.catalog, ledger, self.run_id, int(path[-1]), parts.files(int(path[-1])))
        if self.observer:
            self.observer.item_done(path, ok)

    def items(self, node: MapNode, path: list[str], scope: Scope) -> Sequence[Any]:
        if node.partition is None:
            return map_items(node, scope)
        catalog = self.context.catalog
        prior = (self.previous.steps.get(step_key(path)) or {}).get("info", {}) if self.previous else {}
        ledger = ledger_prefix(str(self.run.get("pipeline_name")), path_slug(path))
        if "manifest" in prior:  # a resumed run keeps the partitions it planned
            parts = Partitions.from_record(catalog, self.run_id, prior)
            skipped = int(prior.get("skipped", 0))
        else:
            values = scope.get(node.partition.parameter) if node.partition.parameter else None
            skip = processed(catalog, ledger) if node.incremental else None
            try:
                parts, skipped = plan(
                    node.partition, values, catalog, self.run_id, f"partitions/{path_slug(path)}", skip
                )
            except PartitionError as exc:
                raise PlanError(str(exc)) from None
        self._partitioned[tuple(path)] = (node, parts, ledger)
        self.node_event(path, "map", "running", {**parts.record(), "skipped": skipped})
        return parts

    def node_event(self, path: list[str], kind: str, status: str, info: dict[str, Any]) -> None:
        self.store.append(
            self.run_id,
            [{"e": "node", "path": path, "type": kind, "status": status, "t": time.time(), "info": info}],
        )
        if self.observer:
            self.observer.node(path, kind, status, info)

    def _reuse(self, node: TaskNode, path: list[str], scope: Scope) -> bool:
        prior = self.previous.succeeded(path) if self.previous else None
        if prior is None:
            return False
        scope.update(self.context.restore(node, prior))
        if self.observer:
            self.observer.step_finished(path, "reused", 0.0, None)
        return True

    def run_task(self, node: TaskNode, path: list[str], scope: Scope) -> bool:
        if self._reuse(node, path, scope):
            return True
        tries = 1 if self.one_attempt or not node.retry else node.retry.attempts
        backoff = node.retry.backoff_seconds if node.retry else 0.0
        base = 0
        if self.previous is not None:
            record = self.previous.steps.get(step_key(path))
            base = len(record["attempts"]) if record else 0
        for n in range(tries):
            if n and backoff:
                time.sleep(backoff * 2 ** (n - 1))
            attempt = base + n + 1
            key = step_key(path)
            with self._starts_lock:
                self._starts[key] = {
                    "e": "start",
                    "path": path,
                    "type": "task",
                    "attempt": attempt,
                    "t": time.time(),
                }
            if self.observer:
                self.observer.step_started(path, attempt)
            with self._slots or contextlib.nullcontext():
                result = self.context.run(node, scope.view(), path, attempt)
            log = None
            if result.output:
                log = self.store.write_log(
                    self.run_id, f"{path_slug(path)}/attempt-{attempt}.log", result.output
                )
            event = {
                "e": "end",
                "path": path,
                "attempt": attempt,
                "t": result.ended,
                "started": result.started,
                "status": result.status,
                "exit_code": result.exit_code,
                "error": result.error,
                "returns": result.returns,
                "metrics": result.metrics,
                "catalog": result.catalog,
                "log": log,
            }
            end = {k: v for k, v in event.items() if v not in (None, {}, [])}
            with self._starts_lock:
                start = self._starts.pop(key, None)
                self.store.append(self.run_id, [start, end] if start else [end])
            if self.observer:
                self.observer.step_finished(path, result.status, result.ended - result.started, result.error)
            if result.ok:
                scope.update(result.values)
                return True
        return False

    def _flush_starts(self) -> None:
        while not self._stopped.wait(START_DELAY):
            cutoff = time.time() - START_DELAY
            with self._starts_lock:
                due = [k for k, e in self._starts.items() if e["t"] <= cutoff]
                if due:
                    self.store.append(self.run_id, [self._starts.pop(k) for k in due])

    # --- the run ---------------------------------------------------------------------------

    def execute(self, pipeline: Pipeline, parameters: dict[str, Any]) -> dict[str, Any]:
        """Run the pipeline to its end; return the final run record (also saved)."""
        run = self.run
        run["status"] = "running"
        self.store.save_run(run)
        if self.observer:
            self.observer.run_started(run)
        scope = Scope(None, parameters)
        error = None
        flusher = threading.Thread(target=self._flush_starts, name="conveyor-starts", daemon=True)
        flusher.start()
        try:
            ok = Traversal(self).run_graph(pipeline.dag, [], scope)
        except KeyboardInterrupt:
            ok, error = False, "interrupted by the user"
            run["status"] = "interrupted"
        finally:
            self._stopped.set()
            flusher.join()
        run["ended_at"] = time.time()
        if run["status"] != "interrupted":
            run["status"] = "succeeded" if ok else "failed"
        run["final_parameters"] = json_safe(scope.own)
        if error:
            run["error"] = error
        self.store.save_run(run)
        if self.observer:
            self.observer.run_finished(run)
        if error:
            raise KeyboardInterrupt
        return run
