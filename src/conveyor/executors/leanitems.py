"""A map's items on the lean path: what is the same for every item, worked out once.

Most maps are one python function called once per item. Taken through the general path,
each item walks its branch, builds a scope, a step request, a capture, a result and two
events, and resolves the function and binds its arguments again: about 40 microseconds of
CPU, where the call itself takes a fraction of one (issue 23). Here the function, the way
it takes its arguments, the fixed arguments, the item's path as JSON and the output capture
are made once per map, and an item is its call, its returns checked, and one
:class:`~conveyor.runlog.itemattempt.ItemAttempt` published: the same record, in the same
run log lines, as the general path writes, one write per item before the next item starts
(a ``kill -9`` loses no finished item).

A map takes this path only when the general path would do nothing more for its items: its
branch is a single python task that declares no secrets, catalog files, retries, timeout,
or object returns and goes nowhere on failure; the executor runs steps in its own
threads (``isolation: thread``); no loop around it sets environment variables (a loop's
``index_as``). Where composites nest, an item holds one of the executor's task slots while
it runs, as a general one does. An item an earlier attempt of the run recorded goes the general
path (it is reused or retried there). Anything else is the general path's, unchanged.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from conveyor.jsontext import compact
from conveyor.jsontypes import JSONObject
from conveyor.runlog.base import RunLog
from conveyor.runlog.itemattempt import ItemAttempt
from conveyor.runlog.records import Status, brief_error
from conveyor.spec.models import MapNode, TaskNode, step_in
from conveyor.step.awaiting import settle
from conveyor.step.cache import CacheError
from conveyor.step.capture import Sink, attach, detach
from conveyor.step.commands import error_text, report_failure
from conveyor.step.context import _NO_SECRETS, StepContext
from conveyor.step.fdcapture import drain
from conveyor.step.params import ItemBinder, StepInputError, map_returns, resolve_callable, to_json_value


class ItemHost(Protocol):
    """What the lean path needs of the engine that runs it (``executors.engine.Engine``)."""

    previous: RunLog | None
    context: StepContext
    #: Attempts started and not yet published, by key (see the engine).
    opening: dict[int, Any]
    opening_lock: threading.Lock
    #: Task slots across nested composites (None: no cap but the map's own).
    slots: threading.BoundedSemaphore | None

    def keep_output(self, path: list[str], attempt: int, output: str) -> tuple[str | None, str | None]:
        """Write an attempt's output as its log: where, or why it could not be."""

    def publish_item(self, record: ItemAttempt) -> None:
        """Publish a map item's attempt."""

    def item_done(self, node: MapNode, path: list[str], ok: bool) -> None:
        """A map item finished (incremental ledgers)."""


def lean_task(node: MapNode) -> tuple[str, TaskNode] | None:
    """The map's one task, when its branch is nothing more (see the module's text)."""
    branch = node.branch
    task = step_in(branch, branch.start_at)
    if not isinstance(task, TaskNode) or task.on_failure is not None:
        return None
    after = step_in(branch, task.next)
    if after is None or after.ends is not True:
        return None
    if task.command_type != "python" or task.secrets or task.catalog is not None:
        return None
    if task.timeout_seconds is not None or (task.retry is not None and task.retry.attempts > 1):
        return None
    if any(spec.kind == "object" for spec in task.returns):
        return None
    return branch.start_at, task


class LeanItems:
    """Runs a map's items on the lean path (see the module's text); :meth:`run` is one
    item, called from the engine's job threads."""

    def __init__(
        self,
        engine: ItemHost,
        node: MapNode,
        path: list[str],
        name: str,
        task: TaskNode,
        params: Mapping[str, object],
        items: Sequence[Any],
        values: list[dict[str, object]],
        general: Callable[[int], bool],
    ) -> None:
        self.engine, self.node, self.task, self.items, self.values = engine, node, task, items, values
        self.general = general
        self.prefix = [*path]
        self.name = name
        self.iterate_as = node.iterate_as
        # The item's path as the run log writes it, with the index in the middle.
        head = compact(self.prefix)[:-1]
        self._head = head + ("," if self.prefix else "") + '"'
        self._tail = '",' + compact(name) + "]"
        self._bind: ItemBinder | None = None
        #: Why every item fails (its function cannot be had), and whether its log says so:
        #: worded as the general path words it for each item.
        self._failure: tuple[str, bool] | None = None
        try:
            self._bind = ItemBinder(resolve_callable(task.command), params, node.iterate_as)
        except StepInputError as exc:
            self._failure = (str(exc), True)
        except Exception as exc:  # a module raising on import, a builtin without a signature
            self._failure = (error_text(exc), False)
        self._metrics = {spec.name for spec in task.returns if spec.kind == "metric"}
        self._local = threading.local()
        self._previous = engine.previous
        self._echo = engine.context.echo
        self._running = engine.context.running
        self._incremental = node.incremental
        self._slots = engine.slots
        context = engine.context
        cache = context.cache
        self._spec = cache.policy(task) if cache is not None else None
        self._cache = cache if self._spec is not None else None
        self._params = params
        #: The items' cache keys (made at the first item's lookup: StepCache.item_keyer).
        self._keyer: Callable[[object], str] | None = None
        self._workdir, self._pipeline, self._run_id = context.workdir, context.pipeline, context.run_id

    def _lookup(
        self, item: object, sink: Sink, returns: JSONObject, metrics: JSONObject, given: dict[str, object]
    ) -> tuple[str | None, JSONObject | None]:
        """The item's cache key (None: it cannot be worked out; the item runs uncached), and,
        on a hit, what its record's info says (its returns and metrics filled in), as the
        general path's ``StepContext`` does."""
        cache, spec = self._cache, self._spec
        assert cache is not None and spec is not None
        try:
            keyer = self._keyer
            if keyer is None:
                keyer = self._keyer = cache.item_keyer(
                    self.task, spec, self._params, self._workdir, self.iterate_as
                )
            key = keyer(item)
        except CacheError as exc:
            sink.write(f"conveyor: cache: {exc}; the step runs uncached\n")
            return None, None
        hit, why = cache.lookup(key, spec)
        if why:
            sink.write(f"conveyor: cache: {why}\n")
        if hit is None:
            return key, None
        for spec_of in self.task.returns:
            name = spec_of.name
            if name in self._metrics:
                metrics[name] = given[name] = hit.metrics.get(name)
            else:
                returns[name] = hit.returns.get(name)
        return key, {"cached": {"key": key, "run": hit.run_id}}

    def _fill(self, key: str, where: list[str], returns: JSONObject, metrics: JSONObject, sink: Sink) -> None:
        """Keep a succeeded item in the cache (a failure to do so is said, not fatal)."""
        assert self._cache is not None
        try:
            self._cache.fill(key, self._run_id, where, self._pipeline, returns, metrics, {}, {}, hold=True)
        except (OSError, ValueError) as exc:
            sink.write(f"conveyor: cache: could not keep this result: {exc}\n")

    def finish(self) -> None:
        """The map's items are done: the cache entries they held back are written (a
        failure is said on the run's standard error, not fatal: they are misses later)."""
        if self._cache is None:
            return
        lost = self._cache.flush()
        if lost is not None:
            count, exc = lost
            where = "/".join(self.prefix)
            print(
                f"conveyor: cache: could not keep {count} results (map '{where}' ended): {exc}; "
                "a later run computes them again",
                file=sys.stderr,
            )

    def run(self, index: int) -> bool:
        """One item: called, checked, recorded; True if it succeeded."""
        key = str(index)
        where = [*self.prefix, key, self.name]
        if self._previous is not None and self._previous.step(where) is not None:
            return self.general(index)  # an earlier attempt of the run recorded it
        engine = self.engine
        item = self.items[index]
        local = self._local
        sink = getattr(local, "sink", None)
        if sink is None:
            sink = local.sink = Sink(_NO_SECRETS, self._echo)
        returns: JSONObject = {}
        metrics: JSONObject = {}
        given: dict[str, object] = {}
        opening = engine.opening
        handle = (tuple(where), 1)
        opening[id(where)] = (where, 1, time.time())  # published by the ticker if it runs long
        started = time.time()
        error: str | None = None
        cached: JSONObject | None = None
        stored: str | None = None
        if self._cache is not None:
            try:
                stored, cached = self._lookup(item, sink, returns, metrics, given)
            except (OSError, ValueError) as exc:  # an unreadable cache log: the item fails, as it would
                error = error_text(exc)
                sink.write(f"conveyor: {error}\n")
                returns.clear()
                metrics.clear()
                given.clear()
        if cached is None and error is None:
            if self._slots is None:
                error = self._captured(item, sink, handle, returns, metrics, given)
            else:
                with self._slots:  # nested composites: the executor's max_workers caps tasks
                    error = self._captured(item, sink, handle, returns, metrics, given)
            if stored is not None and error is None:
                self._fill(stored, where, returns, metrics, sink)
        output = sink.take()
        log = None
        if output:
            log, lost = engine.keep_output(where, 1, output)
            if lost is not None:
                error = lost + (f" (the step itself failed: {error})" if error else "")
        opened = opening.pop(id(where), None) is not None  # one dict operation: atomic
        if not opened:
            with engine.opening_lock:  # the ticker took it: once ours, it is published or back
                opened = opening.pop(id(where), None) is not None
        engine.publish_item(
            ItemAttempt(
                where,
                1,
                started,
                time.time(),
                Status.SUCCEEDED if error is None else Status.FAILED,
                returns,
                metrics,
                None if error is None else brief_error(error),
                log,
                opened,
                self._head + key + self._tail,
                cached,
            )
        )
        own: dict[str, object] = {self.iterate_as: item}
        if error is None:
            own.update(returns)
            if given:
                own.update(given)  # a metric goes on as the function returned it
        self.values[index] = own
        if self._incremental:
            engine.item_done(self.node, where[:-1], error is None)
        return error is None

    def _captured(
        self,
        item: object,
        sink: Sink,
        handle: tuple[tuple[str, ...], int],
        returns: JSONObject,
        metrics: JSONObject,
        given: dict[str, object],
    ) -> str | None:
        """:meth:`_call` with the thread's output going to ``sink`` (live, as ``handle``)."""
        running = self._running
        running[handle] = sink
        previous = attach(sink)
        try:
            error = self._call(item, returns, metrics, given)
            drain()
        finally:
            detach(previous)
            del running[handle]
        return error

    def _call(
        self, item: object, returns: JSONObject, metrics: JSONObject, given: dict[str, object]
    ) -> str | None:
        """Call the function for ``item``, filling ``returns`` and ``metrics`` (and ``given``:
        the metrics as returned); the error, if any, as the general path words it (the
        user's traceback goes to the log)."""
        bind = self._bind
        if bind is None:
            assert self._failure is not None
            failure, said = self._failure
            if said:
                print(f"conveyor: {failure}", file=sys.stderr)
            return failure
        try:
            kwargs = bind(item)
        except StepInputError as exc:
            print(f"conveyor: {exc}", file=sys.stderr)
            return str(exc)
        except Exception as exc:  # a validator raising on a cast
            return error_text(exc)
        try:
            value = settle(bind.func(**kwargs))
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            return report_failure(exc)
        try:
            mapped = map_returns(value, self.task.returns)
        except StepInputError as exc:
            print(f"conveyor: {exc}", file=sys.stderr)
            return str(exc)
        except Exception as exc:
            return error_text(exc)
        try:
            for name, one in mapped.items():
                kept = to_json_value(name, one)
                if name in self._metrics:
                    metrics[name] = kept
                    given[name] = one
                else:
                    returns[name] = kept
        except Exception as exc:  # not JSON, a model whose dump raises: this item fails
            returns.clear()
            metrics.clear()
            given.clear()
            text = str(exc) if isinstance(exc, StepInputError) else error_text(exc)
            print(f"conveyor: {text}", file=sys.stderr)
            return text
        return None
