"""One attempt of one task inside the conveyor context.

Fetch the step's catalog inputs, run its command (in this process or a child), then put
its outputs into the catalog, keep ``object`` returns as pickles in the catalog, and
split metrics from parameters. Secret values are scrubbed from everything recorded.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from conveyor.catalog.store import Catalog, CatalogEntry, PathEscapeError
from conveyor.jsontypes import JSONObject
from conveyor.runlog.records import Attempt, Status
from conveyor.spec.models import CacheSpec, TaskNode
from conveyor.step.cache import CacheError, StepCache
from conveyor.step.capture import MIN_SECRET_LENGTH, Redactor, Sink
from conveyor.step.launch import Launcher, in_process, in_subprocess
from conveyor.step.params import StepInputError, to_json_value
from conveyor.step.request import CommandResult, StepRequest
from conveyor.step.secrets import SecretsBackend

OBJECT_KEY = "$object"

#: The redactor of the steps with no secrets: it masks nothing, and is never changed.
_NO_SECRETS = Redactor()


@dataclass
class AttemptResult:
    """One attempt as the engine records it, and the values it gives the parameters."""

    status: Status
    started: float
    ended: float
    #: Values for the parameter scope (objects as live Python objects).
    values: dict[str, object] = field(default_factory=dict)
    #: What the run log keeps: JSON returns, and references for objects.
    returns: JSONObject = field(default_factory=dict)
    metrics: JSONObject = field(default_factory=dict)
    #: The catalog entries of the files this attempt put (``CatalogEntry.to_dict()``).
    catalog: list[JSONObject] = field(default_factory=list)
    error: str | None = None
    exit_code: int | None = None
    output: str = ""
    #: How the command ran, when it was not simply run (mocked, patched, cached).
    marks: JSONObject = field(default_factory=dict)
    #: Object returns as pickled, and the files put in the catalog: what a cache entry keeps.
    pickled: dict[str, bytes] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status is Status.SUCCEEDED


def _refuse_secret(name: str, data: bytes, redactor: Redactor) -> None:
    if redactor.leaked(data):
        raise StepInputError(
            f"return '{name}' holds the value of a declared secret: conveyor keeps returns in the run "
            "log and catalog, and never keeps a secret in clear. Return something derived from it instead"
        )


def path_slug(path: list[str]) -> str:
    """A file-system-safe, stable name for a step path."""
    text = "/".join(path)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in "__".join(path))[:80]
    return f"{safe}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"


class StepContext:
    """Binds a run's catalog, secrets and working directory to attempts of its tasks."""

    def __init__(
        self,
        run_id: str,
        catalog: Catalog,
        secrets: SecretsBackend,
        workdir: Path,
        launcher: Launcher = in_process,
        echo: IO[str] | None = None,
    ) -> None:
        self.run_id = run_id
        self.catalog = catalog
        self.secrets = secrets
        self.workdir = workdir
        self.launcher = launcher
        self.echo = echo
        #: The output so far of attempts still running, by (path, attempt): what the
        #: engine writes out while they run, so that a viewer can follow it.
        self.running: dict[tuple[tuple[str, ...], int], Sink] = {}
        #: Step caching across runs (None: this run does not cache).
        self.cache: StepCache | None = None
        #: The pipeline's name, kept in cache entries (``conveyor cache list --pipeline``).
        self.pipeline: str | None = None

    def restore(self, node: TaskNode, attempt: Attempt) -> dict[str, object]:
        """The values a succeeded attempt put into the scope, read back from its record."""
        returns, metrics = attempt.returns, attempt.metrics
        values: dict[str, object] = {}
        for spec in node.returns:
            if spec.kind == "metric":
                values[spec.name] = metrics.get(spec.name)
            elif spec.kind == "object":
                reference = returns[spec.name]
                values[spec.name] = self.load_object(reference if isinstance(reference, dict) else {})
            else:
                values[spec.name] = returns.get(spec.name)
        return values

    def load_object(self, reference: Mapping[str, object]) -> object:
        """Unpickle an ``object`` return recorded by an earlier attempt (for resume)."""
        return pickle.loads(self.catalog.get_bytes(str(reference[OBJECT_KEY])))

    def _secrets(self, node: TaskNode) -> dict[str, str]:
        values, missing, short = {}, [], []
        for name in node.secrets:
            value = self.secrets.get(name)
            if value is None:
                missing.append(name)
            elif len(value) < MIN_SECRET_LENGTH:
                short.append(name)
            else:
                values[name] = value
        if missing:
            raise StepInputError(f"secret {', '.join(missing)} not found in {self.secrets.where}")
        if short:
            raise StepInputError(
                f"secret {', '.join(short)} is shorter than {MIN_SECRET_LENGTH} characters: conveyor refuses "
                "it, as masking it in logs would mask ordinary text too"
            )
        return values

    def _launcher(self, node: TaskNode, secrets: dict[str, str]) -> Launcher:
        """A python step that declares secrets runs in a child process of its own: only its
        environment holds them, and everything it (or its own children) prints is captured
        and masked at the file descriptors."""
        if secrets and node.command_type == "python" and self.launcher is in_process:
            return in_subprocess
        return self.launcher

    def run(
        self,
        node: TaskNode,
        params: Mapping[str, object],
        path: list[str],
        attempt: int,
        env: Mapping[str, str] | None = None,
    ) -> AttemptResult:
        """One attempt: catalog inputs, the command, then outputs kept; never raises for the
        step's own failures (they are the result's error)."""
        started = time.time()
        # A step that declares no secrets shares one redactor that masks nothing (most
        # steps, every map item): nothing is built per attempt for it.
        redactor = Redactor() if node.secrets else _NO_SECRETS
        sink = Sink(redactor, self.echo)
        result = AttemptResult(status=Status.FAILED, started=started, ended=started)
        running = (tuple(path), attempt)
        self.running[running] = sink
        key: str | None = None
        try:
            secrets = self._secrets(node) if node.secrets else {}
            if secrets:
                redactor.values = Redactor(secrets.values()).values
            fetched = self._transfer(node, "get", sink) if node.catalog and node.catalog.get else []
            spec = self.cache.policy(node) if self.cache is not None else None
            key = self._cache_key(node, spec, params, fetched, sink, env) if spec is not None else None
            if key is not None and spec is not None and self._cached(node, spec, key, path, result, sink):
                return self._finish(result, redactor, sink)
            request = StepRequest(
                node, params, path, self.run_id, self.workdir, secrets, attempt, dict(env or {})
            )
            command = self._launcher(node, secrets)(request, node.timeout_seconds, sink)
            result.exit_code = command.exit_code
            result.marks = dict(command.marks)
            self._keep_artifacts(command, path, result)
            if command.ok:
                self._outputs(node, command, path, result, redactor, sink)
                result.status = Status.SUCCEEDED
                if key is not None and self.cache is not None:
                    self._fill(key, path, result, sink)
            else:
                result.error = command.error
                if node.catalog and node.catalog.put:
                    self._put_partial(node, result, sink)
        except (StepInputError, PathEscapeError, OSError, ValueError) as exc:
            result.error = str(exc) if isinstance(exc, StepInputError) else f"{type(exc).__name__}: {exc}"
            result.returns, result.metrics, result.values = {}, {}, {}
            sink.write(f"conveyor: {result.error}\n")
        finally:
            self.running.pop(running, None)
        return self._finish(result, redactor, sink)

    def _finish(self, result: AttemptResult, redactor: Redactor, sink: Sink) -> AttemptResult:
        # Errors and logs are text for people: masked. Returned data is never altered.
        result.error = redactor.text(result.error) if result.error else None
        result.output = sink.getvalue()
        result.ended = time.time()
        return result

    def _cache_key(
        self,
        node: TaskNode,
        spec: CacheSpec,
        params: Mapping[str, object],
        fetched: list[CatalogEntry],
        sink: Sink,
        env: Mapping[str, str] | None = None,
    ) -> str | None:
        """This attempt's cache key (None: its code cannot be read; it runs uncached)."""
        cache = self.cache
        assert cache is not None
        try:
            fetched_files = {e.name: e.sha256 for e in fetched}
            return cache.key(node, spec, params, self.workdir, fetched_files, env)
        except CacheError as exc:
            sink.write(f"conveyor: cache: {exc}; the step runs uncached\n")
            return None

    def _cached(
        self, node: TaskNode, spec: CacheSpec, key: str, path: list[str], result: AttemptResult, sink: Sink
    ) -> bool:
        """Restore a cache hit into ``result`` (nothing runs); False on a miss."""
        assert self.cache is not None
        hit, why = self.cache.lookup(key, spec)
        if why:
            sink.write(f"conveyor: cache: {why}\n")
        if hit is None:
            return False
        objects = self.cache.restore(hit, self.workdir)
        for ret in node.returns:
            if ret.kind == "object" and ret.name in objects:
                data = hit.objects[ret.name]
                entry = self.catalog.put_bytes(self.run_id, f"{path_slug(path)}/{ret.name}.pickle", data)
                result.returns[ret.name] = {OBJECT_KEY: entry.location, "sha256": entry.sha256}
                result.values[ret.name] = objects[ret.name]
            elif ret.kind == "metric":
                result.metrics[ret.name] = result.values[ret.name] = hit.metrics.get(ret.name)
            else:
                result.returns[ret.name] = result.values[ret.name] = hit.returns.get(ret.name)
        if node.catalog and node.catalog.put:
            result.catalog = [
                e.to_dict() for e in self.catalog.put(self.run_id, node.catalog.put, self.workdir)
            ]
        result.status = Status.SUCCEEDED
        result.marks = {"cached": {"key": key, "run": hit.run_id}}
        # No log line: the record says it (a log file per hit would cost more than the hit).
        return True

    def _fill(self, key: str, path: list[str], result: AttemptResult, sink: Sink) -> None:
        """Keep a succeeded attempt in the cache (a failure to do so is said, not fatal)."""
        assert self.cache is not None
        files = {str(e["name"]): self.workdir / str(e["name"]) for e in result.catalog if "name" in e}
        returns = {k: v for k, v in result.returns.items() if k not in result.pickled}
        try:
            self.cache.fill(
                key, self.run_id, path, self.pipeline, returns, result.metrics, result.pickled, files
            )
        except (OSError, ValueError) as exc:
            sink.write(f"conveyor: cache: could not keep this result: {exc}\n")

    def _transfer(self, node: TaskNode, direction: str, sink: Sink) -> list[CatalogEntry]:
        """Catalog get or put, pattern by pattern: one that matches nothing is a warning in
        the step's log, or with ``strict`` a failure of the step."""
        spec = node.catalog
        assert spec is not None
        move = self.catalog.get if direction == "get" else self.catalog.put
        entries = []
        for pattern in spec.get if direction == "get" else spec.put:
            found = move(self.run_id, [pattern], self.workdir)
            if not found and self.catalog.keeps_copies:
                message = f"catalog {direction} pattern {pattern!r} matched no file"
                if spec.strict:
                    raise StepInputError(f"{message} (catalog: {{strict: true}})")
                sink.write(f"conveyor: warning: {message}\n")
            entries.extend(found)
        return entries

    def _put_partial(self, node: TaskNode, result: AttemptResult, sink: Sink) -> None:
        """A failed attempt's ``put`` files are stored too, recorded on that attempt, so its
        partial outputs can be inspected. A pattern matching nothing is no second error."""
        assert node.catalog is not None
        for pattern in node.catalog.put:
            try:
                found = self.catalog.put(self.run_id, [pattern], self.workdir)
            except (OSError, ValueError, PathEscapeError) as exc:
                sink.write(f"conveyor: warning: catalog put {pattern!r} after the failure: {exc}\n")
                continue
            result.catalog.extend(entry.to_dict() for entry in found)

    def _keep_artifacts(self, command: CommandResult, path: list[str], result: AttemptResult) -> None:
        for name, data in command.artifacts.items():
            entry = self.catalog.put_bytes(self.run_id, f"{path_slug(path)}/{name}", data)
            result.catalog.append(entry.to_dict())

    def _outputs(
        self,
        node: TaskNode,
        command: CommandResult,
        path: list[str],
        result: AttemptResult,
        redactor: Redactor,
        sink: Sink,
    ) -> None:
        mocked = bool(command.marks.get("mocked"))
        if node.catalog and node.catalog.put and not mocked:
            for entry in self._transfer(node, "put", sink):
                result.catalog.append(entry.to_dict())
        for spec in node.returns:
            if mocked and spec.name not in command.values:
                continue  # a mocked step sets only the returns the parameters already had
            value = command.values.get(spec.name)
            if spec.kind == "metric":
                result.metrics[spec.name] = to_json_value(spec.name, value)
                result.values[spec.name] = value
            elif spec.kind == "object":
                try:
                    data = pickle.dumps(value)
                except Exception as exc:
                    raise StepInputError(f"return '{spec.name}' cannot be pickled: {exc}") from None
                _refuse_secret(spec.name, data, redactor)
                entry = self.catalog.put_bytes(self.run_id, f"{path_slug(path)}/{spec.name}.pickle", data)
                result.returns[spec.name] = {OBJECT_KEY: entry.location, "sha256": entry.sha256}
                result.values[spec.name] = value
                result.pickled[spec.name] = data
            else:
                result.returns[spec.name] = to_json_value(spec.name, value)
                result.values[spec.name] = result.returns[spec.name]
        if redactor.values:
            for name, kept in {**result.returns, **result.metrics}.items():
                _refuse_secret(name, json.dumps(kept, default=str).encode(), redactor)
