"""The run engine: traversal bound to a run log, a step context and a way to run jobs.

It attempts tasks, retries with backoff, reuses succeeded steps when a run is resumed, and
publishes what happens as the run log's own records (``executors.stream``): the store
writer records them, the console and others follow them. It saves the run record at the
start and the end. Executors differ only in how jobs run concurrently and where a command
runs; that is what they pass in.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import pickle
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeGuard

from conveyor.executors.jobs import JobRunner, in_chunks, indexed_in_chunks
from conveyor.executors.leanitems import LeanItems, lean_task
from conveyor.executors.mapitems import MapItems
from conveyor.executors.storewriter import START_DELAY, StoreWriter
from conveyor.executors.stream import Published, Stream, Subscriber
from conveyor.executors.subscribers import LeaseKeeper, LiveLogs
from conveyor.graph.kinds.base import Job, Runner
from conveyor.graph.scope import Scope
from conveyor.graph.traverse import Traversal
from conveyor.jsontypes import JSONObject, JSONValue
from conveyor.runlog import base as runlog_base
from conveyor.runlog.base import RunLog, RunLogStore, RunLogUnwritable, os_cause
from conveyor.runlog.endings import Ending, close
from conveyor.runlog.itemattempt import ItemAttempt
from conveyor.runlog.records import EndEvent, Event, NodeEvent, RunRecord, StartEvent, Status, brief_error
from conveyor.spec.models import MAX_BACKOFF, MapNode, Pipeline, TaskNode
from conveyor.step.commands import running
from conveyor.step.context import StepContext, path_slug
from conveyor.step.params import resolve_callable


def _encodable(value: object) -> TypeGuard[JSONValue]:
    """Whether ``json`` writes ``value`` (as JSON's own types; a tuple as its list)."""
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def json_safe(values: Mapping[str, object]) -> JSONObject:
    """Parameters as the run log keeps them: JSON values, others by their repr."""
    out: JSONObject = {}
    for name, value in values.items():
        if _encodable(value):
            out[name] = value
        else:
            out[name] = {"$repr": repr(value)[:200], "$type": type(value).__name__}
    return out


class Engine(Runner):
    """Drives one run (or, in a pod, one step of it) and publishes everything it does.

    It is the traversal's :class:`~conveyor.graph.kinds.base.Runner`: tasks are attempted,
    retried and published here, map items planned and their ledger kept, and an earlier run's
    succeeded steps reused on resume. Every in-process executor runs through it; pods use it
    for their one task, so an attempt is recorded the same way everywhere. What it publishes
    goes to its own subscribers (store writer, live log follower, lease keeper) and to the
    caller's (``subscribers``: the console, tests).
    """

    def __init__(
        self,
        run: RunRecord,
        store: RunLogStore,
        context: StepContext,
        jobs: JobRunner,
        previous: RunLog | None = None,
        subscribers: Sequence[Subscriber] = (),
        task_slots: int | None = None,
        one_attempt: bool = False,
        lease: float | None = None,
        lean: bool = False,
    ) -> None:
        self.run = run
        self.run_id = run.run_id
        self.store = store
        self.context = context
        self.jobs = jobs
        self.previous = previous
        # In a pod, Argo's retryStrategy makes the further attempts: run just one here.
        self.one_attempt = one_attempt
        #: Task slots across nested composites (None: no cap but each composite's own).
        self.slots = threading.BoundedSemaphore(task_slots) if task_slots else None
        self._writer = StoreWriter(store, self.run_id)
        self._logs = LiveLogs(store, self.run_id, context)
        lease = lease if lease is not None else runlog_base.LEASE_SECONDS
        self._stream = Stream([self._writer, self._logs, LeaseKeeper(store, run, lease), *subscribers])
        self._lease = lease
        self._stopped = threading.Event()
        self._maps = MapItems(context.catalog, self.run_id, run.pipeline_name)
        #: Attempts started and not yet published (by id of their start event). A start is
        #: published with its end, in one batch: one publication per attempt (a map's
        #: items are the hot path). The ticker publishes the starts of attempts still
        #: running, so that subscribers see them within a tick, and the store writer
        #: writes them as before (:data:`START_DELAY`).
        #: (A map item on the lean path keeps its start as a (path, attempt, time) tuple.)
        self.opening: dict[int, StartEvent | tuple[list[str], int, float]] = {}
        self.opening_lock = threading.Lock()
        self._planned: dict[tuple[str, ...], Sequence[Any]] = {}
        #: Whether map items may take the lean path: steps run in this process's threads
        #: (``executors.leanitems``; the executor says so).
        self.lean = lean and not one_attempt

    # --- Runner protocol -------------------------------------------------------------------

    def run_jobs(self, jobs: Iterable[Job], count: int, limit: int | None) -> list[bool]:
        return in_chunks(self.jobs, jobs, count, limit)

    def run_items(
        self,
        node: MapNode,
        path: list[str],
        scope: Scope,
        items: Sequence[Any],
        values: list[dict[str, object]],
        general: Callable[[int], bool],
    ) -> list[bool]:
        count = len(items)
        lean = self._lean(node, path, scope, items, values, general)
        if lean is None:
            return indexed_in_chunks(self.jobs, general, count, node.max_parallelism)
        try:
            with running(self.run_id):
                return indexed_in_chunks(self.jobs, lean.run, count, node.max_parallelism)
        finally:
            lean.finish()

    def _lean(
        self,
        node: MapNode,
        path: list[str],
        scope: Scope,
        items: Sequence[Any],
        values: list[dict[str, object]],
        general: Callable[[int], bool],
    ) -> LeanItems | None:
        """The lean path for this map's items, when it may take it (``executors.leanitems``)."""
        if not self.lean or scope.environment():
            return None
        found = lean_task(node)
        if found is None:
            return None
        name, task = found
        return LeanItems(self, node, path, name, task, scope.view(), items, values, general)

    def keep_output(self, path: list[str], attempt: int, output: str) -> tuple[str | None, str | None]:
        """Write an attempt's output as its log: where it is, or (a full disk, a quota)
        why it could not be, which fails the attempt rather than the run."""
        # The attempt has left `context.running`: once this lock is ours, no live write
        # of its partial output can come after the final one.
        with self._logs.lock:
            name = f"{path_slug(path)}/attempt-{attempt}.log"
            try:
                return self.store.write_log(self.run_id, name, output), None
            except OSError as exc:
                where = self.store.log_location(self.run_id, name)
                return None, f"{os_cause(exc)} while writing the step's output to {where}"

    def publish_item(self, record: ItemAttempt) -> None:
        """Publish a map item's attempt (the lean path's one record per item)."""
        try:
            self._stream.publish((record,))
        except OSError as exc:
            raise RunLogUnwritable(
                self.run_id, f"recording the end of step '{'/'.join(record.path)}'", exc
            ) from None

    def resolve(self, dotted: str) -> Callable[..., Any]:
        return resolve_callable(dotted)

    def item_done(self, node: MapNode, path: list[str], ok: bool) -> None:
        if ok and node.incremental:
            self._maps.done(node, path[:-1], int(path[-1]), self._planned[tuple(path[:-1])])

    def items(self, node: MapNode, path: list[str], scope: Scope) -> Sequence[Any]:
        prior = self.previous.step(path) if self.previous else None
        items, info = self._maps.plan(node, path, scope, prior.info if prior else None)
        self._planned[tuple(path)] = items
        if node.partition is not None:
            self.node_event(path, node.type, Status.RUNNING, info)
        return items

    def node_event(self, path: list[str], kind: str, status: Status, info: JSONObject) -> None:
        event = NodeEvent(path, kind, status, time.time(), info)
        self._publish([event], "recording step", path)

    def _reuse(self, node: TaskNode, path: list[str], scope: Scope) -> bool:
        prior = self.previous.succeeded(path) if self.previous else None
        if prior is None:
            return False
        try:
            scope.update(self.context.restore(node, prior))
        except (OSError, EOFError, pickle.UnpicklingError) as exc:
            # Its object returns are gone (catalog 'none' keeps them in the process that
            # made them) or unreadable: run the step again rather than fail the resume.
            print(f"conveyor: {'/'.join(path)} runs again: {exc}", file=sys.stderr)
            return False
        record = self.previous.step(path) if self.previous else None
        if record is not None:  # its record, as the run log holds it
            self._publish([record], "reusing step", path)
        return True

    def run_task(self, node: TaskNode, path: list[str], scope: Scope) -> bool:
        if self.previous is not None and self._reuse(node, path, scope):
            return True
        tries = 1 if self.one_attempt or not node.retry else node.retry.attempts
        backoff = node.retry.backoff_seconds if node.retry else 0.0
        record = self.previous.step(path) if self.previous else None
        base = len(record.attempts) if record else 0
        for n in range(tries):
            if n and backoff:
                time.sleep(min(backoff * 2 ** min(n - 1, 32), MAX_BACKOFF))
            attempt = base + n + 1
            start = StartEvent(path, attempt, time.time())
            self.opening[id(start)] = start  # published with its end, or by the ticker
            if self.slots is None:
                result = self.context.run(node, scope.view(), path, attempt, scope.environment())
            else:
                with self.slots:
                    result = self.context.run(node, scope.view(), path, attempt, scope.environment())
            log, lost = None, None
            if result.output:
                log, cause = self.keep_output(path, attempt, result.output)
                if cause is not None:  # a full disk, a quota: the step's failure, not the engine's
                    where = self.store.log_location(self.run_id, f"{path_slug(path)}/attempt-{attempt}.log")
                    lost = f"writing the output of step '{'/'.join(path)}' to {where}"
                    result.status, result.error = (
                        Status.FAILED,
                        cause + (f" (the step itself failed: {result.error})" if result.error else ""),
                    )
            end = EndEvent(
                path,
                attempt,
                result.ended,
                result.status,
                started=result.started,
                exit_code=result.exit_code,
                error=brief_error(result.error),
                returns=result.returns,
                metrics=result.metrics,
                catalog=result.catalog,
                log=log,
                info=dict(result.marks) if result.marks else {},
            )
            with self.opening_lock:  # once ours, the ticker has published it or never will
                opened = self.opening.pop(id(start), None)
            assert opened is None or isinstance(opened, StartEvent)  # the general path's own
            self._publish(
                [opened, end] if opened is not None else [end],
                lost or "recording the end of step",
                None if lost else path,
            )
            if result.ok:
                scope.update(result.values)
                return True
        return False

    def flush_records(self) -> None:
        """Write (and sync, as the store's durability says) what the store writer still
        holds, then stop it: a pod runs one task without :meth:`execute`, and must leave
        it recorded before the process exits."""
        try:
            self._writer.drain()
        except OSError as exc:
            raise RunLogUnwritable(self.run_id, "recording the step's last events", exc) from None
        finally:
            self._writer.close()

    def _publish(self, batch: Sequence[Published], what: str, path: list[str] | None = None) -> None:
        """Publish to the subscribers; a store that cannot be written stops the run, saying
        why (``what``, and the step at ``path``: the message is built only then, not for each
        of a map's items)."""
        try:
            self._stream.publish(batch)
        except OSError as exc:
            where = what if path is None else f"{what} '{'/'.join(path)}'"
            raise RunLogUnwritable(self.run_id, where, exc) from None

    def _append(self, events: Sequence[Event], what: str) -> None:
        """Publish events that are not a step's progress (what an earlier driver left open),
        so the console and the UI see them as the store does; a store that cannot be
        written stops the run, saying why."""
        try:
            self._stream.publish(list(events))
        except OSError as exc:
            raise RunLogUnwritable(self.run_id, what, exc) from None

    def _ticks(self) -> None:
        """Tick the subscribers every START_DELAY until the run ends. A run taken over by
        another process stops the ticks (the run's own writes raise the error)."""
        with contextlib.suppress(runlog_base.RunTakenOverError):
            while not self._stopped.wait(START_DELAY):
                self._publish_open()
                self._stream.tick(time.time())
                if self.context.cache is not None:
                    self.context.cache.flush_old()  # a map's held cache lines, a second old

    def _publish_open(self) -> None:
        """Publish the starts of the attempts still running (see ``_opening``). What the
        store refuses now stays for the attempt's end, which raises it."""
        if not self.opening:
            return
        with self.opening_lock:
            # Popped one by one: an attempt starting meanwhile (it adds its start without
            # the lock) is left for its end or the next tick, never dropped.
            # A lean map item pops its own without the lock (it then waits for the lock
            # only when its start was taken here): so each is popped with a default.
            taken = [(key, self.opening.pop(key, None)) for key in list(self.opening)]
            opened = [(key, s) for key, s in taken if s is not None]
            starts = [s if isinstance(s, StartEvent) else StartEvent(*s) for _, s in opened]
            try:
                self._stream.publish(starts)
            except (OSError, runlog_base.RunTakenOverError):
                self.opening.update(opened)

    def _close_open(self, status: Status, t: float) -> None:
        """The run ends with steps still open (interrupted, or its store unwritable): record
        them ended as it did, so that none reads as running for ever."""
        with contextlib.suppress(OSError, runlog_base.RunTakenOverError):
            self._publish_open()
        self._writer.flush()
        with contextlib.suppress(OSError):
            events = close(self.store.load(self.run_id).steps.values(), Ending(status, t))
            if events:
                self._stream.publish(events)

    # --- the run ---------------------------------------------------------------------------

    def execute(self, pipeline: Pipeline, parameters: Mapping[str, object], new: bool = False) -> RunRecord:
        """Run the pipeline to its end; return the final run record (also saved). A ``new``
        run is created atomically: RunExistsError if its id is taken. While it runs, it
        holds a lease in its record, renewed by heartbeat."""
        run = self.run
        run.status = Status.RUNNING
        run.lease_until = time.time() + self._lease
        try:
            self.store.save_run(run, create=new)
        except OSError as exc:
            raise RunLogUnwritable(self.run_id, f"recording the run in {self.store.where}", exc) from None
        self._stream.start()
        try:
            self._stream.publish([dataclasses.replace(run)])
            return self._drive(pipeline, parameters)
        finally:
            self._stream.close()

    def _drive(self, pipeline: Pipeline, parameters: Mapping[str, object]) -> RunRecord:
        run = self.run
        if self.previous is not None and self.previous.closed:
            # What the earlier driver left open ended with it (see runlog.endings.settle).
            self._append(self.previous.closed, "recording how the earlier attempt of the run ended")
        scope = Scope(None, parameters)
        interrupted = False
        unwritable: RunLogUnwritable | None = None
        ticker = threading.Thread(target=self._ticks, name="conveyor-background", daemon=True)
        ticker.start()
        try:
            ok = Traversal(self).run_graph(pipeline.dag, [], scope)
        except KeyboardInterrupt:
            ok, interrupted = False, True
        except RunLogUnwritable as exc:
            ok, unwritable = False, exc
        finally:
            self._stopped.set()
            ticker.join()
        run.ended_at, run.lease_until = time.time(), None
        if interrupted:
            run.status, run.error = Status.INTERRUPTED, "interrupted by the user"
        else:
            run.status = Status.SUCCEEDED if ok else Status.FAILED
        if interrupted or unwritable:
            run.error = str(unwritable) if unwritable else run.error
            self._close_open(Status.INTERRUPTED, run.ended_at)
        try:
            self._writer.drain()  # every event written (and synced) before the run's end is
        except OSError as exc:
            if unwritable is None:
                unwritable = RunLogUnwritable(self.run_id, "recording the run's last events", exc)
                run.status, run.error = Status.FAILED, str(unwritable)
        run.final_parameters = json_safe(scope.own)
        try:
            self.store.save_run(run)
        except OSError as exc:
            # Unrecorded, the run reads as interrupted once this process is gone: retry works.
            raise unwritable or RunLogUnwritable(self.run_id, "recording how the run ended", exc) from None
        self._stream.publish([dataclasses.replace(run)])
        if interrupted:
            raise KeyboardInterrupt
        if unwritable:
            raise unwritable
        return run
