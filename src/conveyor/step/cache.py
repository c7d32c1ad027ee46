"""Step caching across runs, keyed by content.

A task's key is the sha256 of: its definition (command, command type, returns, catalog
patterns, cache version), its code (a python function's module source and that of every
module of the user's it imports, transitively: :mod:`conveyor.step.codekey`; a notebook's
file; a shell command is its text), the values of the parameters it receives (JSON values as
canonical JSON, other objects by the sha256 of their pickle), the environment variables its
scope sets (a loop's ``index_as``, which a python step may read from ``os.environ``), and
the sha256 of every file its ``catalog.get`` brought in. A step after a changed step is run
again only if the values it receives changed: its key sees them, not the step before's code.

The key has a per-step part (definition and code: :func:`step_digest`), worked out once per
step per run, and a per-item part (parameters, environment, fetched files) hashed with it:
a map item's key costs one small JSON text and one sha256. The key's first 16 hex digits
are the per-step part's, and name the log that keeps the step's entries
(:mod:`conveyor.step.cachelog`), read once per run into an index. A blob whose bytes no longer
match their sha256 makes the entry a miss (said once), never a wrong result.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import json
import os
import pickle
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel

from conveyor.catalog.store import SharedStore, _inside
from conveyor.jsontext import compact, plain
from conveyor.jsontypes import JSONObject, JSONValue
from conveyor.spec.models import CacheSpec, TaskNode
from conveyor.step.cachelog import (
    BLOBS,
    ENTRIES,
    STEP_DIGITS,
    CacheEntry,
    digests,
    entries,
    index,
    line,
    log_of,
    number,
    parsed,
    plain_entry,
    remove,
)
from conveyor.step.codekey import code_digest
from conveyor.step.params import resolve_callable

KEY_VERSION = 3  # 2: the environment and imported modules; 3: a per-step part, logs per step


#: A map's held cache lines are written at this many (about 64 KB) or when the oldest has
#: waited this long (seconds), whichever comes first, and at the map's end.
HELD_LINES = 256
HELD_SECONDS = 1.0


class CacheMode(StrEnum):
    """How a run uses the cache: look up and fill it, only fill it, or leave it alone."""

    USE = "use"
    REFRESH = "refresh"  # --refresh-cache: compute again and overwrite
    OFF = "off"  # --no-cache


class CacheError(Exception):
    """A step's key cannot be computed (its function cannot be imported, say): it runs
    uncached, with the reason in its log."""


@dataclass
class Hit:
    """What a cache entry gives back: values for the scope and what the run log keeps."""

    key: str
    run_id: str
    returns: JSONObject = field(default_factory=dict)
    metrics: JSONObject = field(default_factory=dict)
    objects: dict[str, bytes] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)


def _object(value: JSONValue) -> JSONObject:
    return value if isinstance(value, dict) else {}


def policy(node: TaskNode, default: bool | CacheSpec | None) -> CacheSpec | None:
    """The cache settings of ``node``: its own ``cache``, else the pipeline's default. A task
    with secrets is cached only when it says so itself."""
    own = node.cache
    chosen = own if own is not None else (None if node.secrets else default)
    if chosen is None or chosen is False:
        return None
    return CacheSpec() if chosen is True else chosen


_code_hashes: dict[tuple[str, int, int], str] = {}
_code_lock = threading.Lock()


def _file_hash(path: str) -> str:
    """sha256 of a source file, remembered while its size and modification time stay."""
    info = os.stat(path)
    stamp = (path, info.st_mtime_ns, info.st_size)
    with _code_lock:
        known = _code_hashes.get(stamp)
    if known is None:
        with open(path, "rb") as handle:
            known = hashlib.sha256(handle.read()).hexdigest()
        with _code_lock:
            _code_hashes[stamp] = known
    return known


_functions: dict[str, tuple[str, str, list[str] | None]] = {}


def _code(node: TaskNode, workdir: Path) -> tuple[str, list[str] | None]:
    """The code's hash, and the parameter names a python function takes (None: all)."""
    if node.command_type == "shell":
        return "", None  # the command text is in the definition
    if node.command_type == "notebook":
        return _file_hash(str(workdir / node.command)), None
    known = _functions.get(node.command)  # a module is imported once per process
    if known is None:
        known = _functions[node.command] = _function(node)
    module, source, names = known
    try:
        return code_digest(module, source), names
    except OSError as exc:
        raise CacheError(f"cannot read the code of {node.command}: {exc}") from None


def _function(node: TaskNode) -> tuple[str, str, list[str] | None]:
    """A python command's module and source file, and the parameter names it takes (None:
    all)."""
    try:
        func = resolve_callable(node.command)
        source = inspect.getsourcefile(func) or getattr(
            importlib.util.find_spec(func.__module__), "origin", None
        )
    except Exception as exc:
        raise CacheError(f"cannot read the code of {node.command}: {exc}") from None
    if not source or not os.path.exists(source):
        raise CacheError(f"the source of {node.command} is not a file")
    parameters = inspect.signature(func).parameters.values()
    module = getattr(inspect.getmodule(func), "__name__", None) or func.__module__
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return module, source, None
    return module, source, [p.name for p in parameters if p.kind is not inspect.Parameter.VAR_POSITIONAL]


def _value(value: object) -> object:
    """A parameter as the key sees it: JSON as itself, anything else by its pickle's hash."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    try:
        json.dumps(value, sort_keys=True, allow_nan=True)
        return value
    except (TypeError, ValueError):
        return {"$sha256": hashlib.sha256(pickle.dumps(value)).hexdigest()}


def digest(value: object) -> str:
    """sha256 of a parameter's value as the key sees it (see :func:`_value`); a
    :class:`CacheError` if it cannot be had (a value neither JSON nor picklable, a lock; one
    whose encoding changed once checked). A partition is seen by its files' URLs and versions."""
    identity = getattr(value, "cache_identity", None)
    seen = {"$files": identity()} if callable(identity) else None
    try:
        kept = _value(value) if seen is None else seen
        text = json.dumps(kept, sort_keys=True, separators=(",", ":"), allow_nan=True, default=str)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        raise CacheError(f"a parameter cannot be part of a key ({type(exc).__name__}: {exc})") from None
    return hashlib.sha256(text.encode()).hexdigest()


class Digests:
    """Parameter digests remembered by object for one run: a map's list parameter, seen by
    each of 100,000 shell items, is hashed once, not once per item."""

    def __init__(self) -> None:
        self._known: dict[int, tuple[object, str]] = {}
        self._lock = threading.Lock()

    def __call__(self, value: object) -> str:
        if isinstance(value, str | int | float | bool) or value is None:
            return digest(value)
        with self._lock:
            held = self._known.get(id(value))
        if held is not None and held[0] is value:
            return held[1]
        found = digest(value)
        with self._lock:
            self._known[id(value)] = (value, found)  # the reference keeps the id unique
        return found


def step_digest(node: TaskNode, spec: CacheSpec, workdir: Path) -> tuple[str, list[str] | None]:
    """The per-step part of a key (definition, code, cache version), and the parameter names
    the step takes (None: all): the same for every item of a map."""
    code, names = _code(node, workdir)
    definition = {
        "v": KEY_VERSION,
        "command": node.command,
        "command_type": node.command_type,
        "returns": [r.model_dump(mode="json") for r in node.returns],
        "catalog": node.catalog.model_dump(mode="json") if node.catalog else None,
        "version": spec.version,
        "code": code,
    }
    text = json.dumps(definition, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest(), names


#: Values a key holds as themselves (exactly these types: a subclass goes by its digest).
_SCALARS = frozenset({str, int, float, bool, type(None)})


def item_key(
    step: str,
    names: list[str] | None,
    spec: CacheSpec,
    params: Mapping[str, object],
    fetched: Mapping[str, str],
    hashed: Callable[[object], str] = digest,
    env: Mapping[str, str] | None = None,
) -> str:
    """The key of one attempt given its step's part (:func:`step_digest`): scalars as
    themselves, other values by their digest (``hashed``), hashed with the step's part. Its
    first 16 hex digits are the step's, which name the log of its entries."""
    chosen = sorted(params) if names is None else [n for n in names if n in params]
    ignore = spec.ignore
    # Name and value pairs in a set order, dumped by json's default (C) encoder: scalars as
    # themselves, anything else as a one-element list holding its digest (never a scalar).
    received = []
    for n in chosen:
        if n not in ignore:
            v = params[n]
            received.append((n, v if type(v) in _SCALARS else [hashed(v)]))
    environment = sorted((n, v) for n, v in (env or {}).items() if n not in ignore)
    text = plain([received, environment, sorted(fetched.items())])
    item = hashlib.sha256(f"{step}\n{text}".encode()).hexdigest()
    return step[:STEP_DIGITS] + item[: 64 - STEP_DIGITS]


def cache_key(
    node: TaskNode,
    spec: CacheSpec,
    params: Mapping[str, object],
    workdir: Path,
    fetched: Mapping[str, str],
    hashed: Callable[[object], str] = digest,
    env: Mapping[str, str] | None = None,
) -> str:
    """The key of one attempt's result (see the module's docstring for what it covers).
    ``env`` is what the step's scope adds to its environment (a loop's index)."""
    step, names = step_digest(node, spec, workdir)
    return item_key(step, names, spec, params, fetched, hashed, env)


class StepCache:
    """Lookups and fills of one run's steps against the catalog's cache entries. What is
    per step is worked out once per run: its policy, its key's per-step part, and the index
    of its log (read at its first lookup)."""

    def __init__(
        self, catalog: SharedStore, default: bool | CacheSpec | None, mode: CacheMode = CacheMode.USE
    ):
        self.catalog = catalog
        self.default = default
        self.mode = mode
        self.digests = Digests()
        self._warned: set[str] = set()
        #: By id(node), with the node (its reference keeps the id unique).
        self._policies: dict[int, tuple[TaskNode, CacheSpec | None]] = {}
        self._steps: dict[tuple[int, str], tuple[TaskNode, CacheSpec, str, list[str] | None]] = {}
        #: Step logs read, by their name: entries by key, unparsed.
        self._indexes: dict[str, dict[str, str]] = {}
        self._blobs: set[str] = set()  # blobs this process wrote
        self._lock = threading.Lock()
        #: Lines waiting for a writer, by log; lines queued and written so far (a count).
        self._pending: dict[str, list[str]] = {}
        self._queue = threading.Condition()
        self._queued = self._written = 0
        self._busy = False
        self._waiting = 0  # threads waiting in _append for the writer (under _queue)
        #: Lines a map's items filled and held back (:meth:`fill`'s ``hold``), by log, with
        #: their count and when the oldest was held.
        self._held: dict[str, list[str]] = {}
        self._held_count = 0
        self._held_since = 0.0
        #: Held lines that could not be written, and the last reason (said by flush).
        self._lost = 0
        self._lost_error: Exception | None = None

    def policy(self, node: TaskNode) -> CacheSpec | None:
        """This step's cache settings in this run (None: not cached)."""
        if self.mode is CacheMode.OFF:
            return None
        held = self._policies.get(id(node))
        if held is None or held[0] is not node:
            held = self._policies[id(node)] = (node, policy(node, self.default))
        return held[1]

    def key(
        self,
        node: TaskNode,
        spec: CacheSpec,
        params: Mapping[str, object],
        workdir: Path,
        fetched: Mapping[str, str],
        env: Mapping[str, str] | None = None,
    ) -> str:
        """:func:`cache_key`, with the per-step part worked out once per step in this run."""
        step, names = self._step(node, spec, workdir)
        return item_key(step, names, spec, params, fetched, self.digests, env)

    def _step(self, node: TaskNode, spec: CacheSpec, workdir: Path) -> tuple[str, list[str] | None]:
        """:func:`step_digest`, worked out once per step in this run."""
        held = self._steps.get((id(node), str(workdir)))
        if held is None or held[0] is not node or held[1] is not spec:
            step, names = step_digest(node, spec, workdir)
            held = self._steps[(id(node), str(workdir))] = (node, spec, step, names)
        return held[2], held[3]

    def item_keyer(
        self, node: TaskNode, spec: CacheSpec, params: Mapping[str, object], workdir: Path, name: str
    ) -> Callable[[object], str]:
        """The keys of a map's items, whose parameters are ``params`` with the item as
        ``name``: ``keyer(item) == self.key(node, spec, {**params, name: item}, workdir, {})``
        (tested), with everything but the item's value encoded and hashed once per map."""
        step, names = self._step(node, spec, workdir)
        every = {**params, name: None}
        chosen = sorted(every) if names is None else [n for n in names if n in every]
        ignore, hashed = spec.ignore, self.digests
        if name in ignore or name not in chosen:  # every item has the same key
            fixed = item_key(step, names, spec, every, {}, hashed)
            return lambda item: fixed
        # item_key's text, json's default separators: [[pairs], [], []], a pair ["n", v]
        # with v a scalar as itself or a one-element list holding its digest.
        pairs = []
        for n in chosen:
            if n not in ignore and n != name:
                v = params[n]
                pairs.append(plain([n, v if type(v) in _SCALARS else [hashed(v)]]))
        at = [n for n in chosen if n not in ignore].index(name)
        head = f"{step}\n[[" + "".join(p + ", " for p in pairs[:at]) + "[" + plain(name) + ", "
        tail = "]" + "".join(", " + p for p in pairs[at:]) + "], [], []]"
        scalars, sha256, encode, prefix = _SCALARS, hashlib.sha256, plain, step[:STEP_DIGITS]
        cut = 64 - STEP_DIGITS

        def keyer(item: object) -> str:
            value = encode(item) if type(item) in scalars else '["' + hashed(item) + '"]'
            return prefix + sha256((head + value + tail).encode()).hexdigest()[:cut]

        return keyer

    def _index(self, name: str) -> dict[str, str]:
        found = self._indexes.get(name)
        if found is None:
            with self._lock:
                found = self._indexes.get(name)
                if found is None:
                    found = self._indexes[name] = index(self.catalog.read_appended(name))
        return found

    def lookup(self, key: str, spec: CacheSpec) -> tuple[Hit | None, str | None]:
        """The entry for ``key`` if it is whole, fresh and intact; else None, and why not
        when it is worth saying (a corrupted or expired entry)."""
        if self.mode is not CacheMode.USE:
            return None, None
        raw = self._index(log_of(key)).get(key)
        if raw is None:
            return None, None
        entry = parsed(key, raw)
        if entry.get("unreadable"):
            return None, self._once(key, "its cache entry is unreadable; running it again")
        if spec.ttl_seconds is not None and time.time() - number(entry.get("created")) > spec.ttl_seconds:
            return None, f"its cache entry is older than ttl_seconds ({spec.ttl_seconds:g}); running it again"
        hit = Hit(key, str(entry.get("run_id")), _object(entry.get("returns")), _object(entry.get("metrics")))
        for kind, target in (("objects", hit.objects), ("files", hit.files)):
            held = entry.get(kind)
            if not held:  # most entries: JSON returns only
                continue
            for name, blob in digests(held).items():
                data = self.catalog.get_shared(BLOBS + blob)
                if data is None or hashlib.sha256(data).hexdigest() != blob:
                    return None, self._once(
                        key, f"its cached {kind[:-1]} '{name}' is missing or corrupted; running it again"
                    )
                target[name] = data
        return hit, None

    def _once(self, key: str, message: str) -> str | None:
        if key in self._warned:
            return None
        self._warned.add(key)
        return message

    def restore(self, hit: Hit, workdir: Path) -> dict[str, object]:
        """Put the entry's files back into the working directory; the objects, unpickled."""
        for name, data in hit.files.items():
            local = _inside(workdir, name)
            local.parent.mkdir(parents=True, exist_ok=True)
            tmp = local.with_name(f".{local.name}.{os.urandom(8).hex()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, local)
        return {name: pickle.loads(data) for name, data in hit.objects.items()}

    def _blob(self, data: bytes) -> str:
        """Keep ``data`` as a content-addressed blob (once per process); its sha256."""
        blob = hashlib.sha256(data).hexdigest()
        if blob not in self._blobs:
            self.catalog.put_shared(BLOBS + blob, data)
            self._blobs.add(blob)
        return blob

    def fill(
        self,
        key: str,
        run_id: str,
        path: list[str],
        pipeline: str | None,
        returns: JSONObject,
        metrics: JSONObject,
        objects: dict[str, bytes],
        files: dict[str, Path],
        hold: bool = False,
    ) -> None:
        """Keep a succeeded attempt's results under ``key``: blobs first, then the entry's
        line, appended to its step's log in one write. With ``hold`` (a map's items, which
        refer to no blob), the line waits to be written with others: at :data:`HELD_LINES`
        lines, once the oldest has waited :data:`HELD_SECONDS` (at the next fill or the
        engine's next tick), or at :meth:`flush` (the map's end). A kill loses at most those
        lines: entries, looked up again as misses; never a result, which the run log keeps."""
        if self.mode is CacheMode.OFF:
            return
        held_back = hold and not objects and not files
        if held_back:  # a map's item: its entry written out directly
            text = plain_entry(key, run_id, pipeline, "/".join(path), time.time(), returns, metrics)
        else:
            entry: CacheEntry = {
                "key": key,
                "run_id": run_id,
                "pipeline": pipeline,
                "step": "/".join(path),
                "created": time.time(),
                "returns": returns,
                "metrics": metrics,
                "objects": {},
                "files": {},
                "size": 0,
            }
            for name, data in objects.items():
                entry["objects"][name] = self._blob(data)
                entry["size"] += len(data)
            for name, local in files.items():
                data = local.read_bytes()
                entry["files"][name] = self._blob(data)
                entry["size"] += len(data)
            text = compact(entry)
        name = log_of(key)
        held = self._indexes.get(name)
        if held is not None:  # a later lookup in this run sees it
            held[key] = text
        if held_back:
            self._hold(name, line(key, text))
        else:
            self._append(name, line(key, text))

    def _hold(self, name: str, text: str) -> None:
        now = time.monotonic()
        with self._lock:
            lines = self._held.get(name)
            if lines is None:
                lines = self._held[name] = []
            lines.append(text)
            if not self._held_count:
                self._held_since = now
            self._held_count += 1
            due = self._held_count >= HELD_LINES or now - self._held_since >= HELD_SECONDS
        if due:
            self._write_held()

    def _write_held(self) -> None:
        """Write the held lines, one write per log; what cannot be written is counted for
        :meth:`flush` to say once, not raised to the item that happened to fill last."""
        with self._lock:
            held, self._held, self._held_count = self._held, {}, 0
        for name, lines in held.items():
            try:
                self._append(name, "".join(lines))
            except (OSError, ValueError) as exc:
                with self._lock:
                    self._lost += len(lines)
                    self._lost_error = exc

    def flush_old(self) -> None:
        """Write the held lines if the oldest has waited :data:`HELD_SECONDS` (called by the
        engine's ticker, so that a map whose next item is slow does not hold them on)."""
        with self._lock:
            due = self._held_count > 0 and time.monotonic() - self._held_since >= HELD_SECONDS
        if due:
            self._write_held()

    def flush(self) -> tuple[int, Exception] | None:
        """Write the lines held back (see :meth:`fill`); how many held lines could not be
        written since the last call and why (None: every one was)."""
        self._write_held()
        with self._lock:
            lost, error, self._lost, self._lost_error = self._lost, self._lost_error, 0, None
        return (lost, error) if lost and error is not None else None

    def _append(self, name: str, text: str) -> None:
        """Append a line to a step's log, grouped with the lines other threads (a map's
        items) queue meanwhile: one write per log per group. A thread whose line is not
        written yet writes the group if no one is writing, else waits for the writer, so a
        line is in the log when its fill returns (a failed write is said by the writer's
        fill; its group's entries are then misses later)."""
        with self._queue:
            self._pending.setdefault(name, []).append(text)
            self._queued += 1
            mine = self._queued
            while self._written < mine:
                if self._busy:
                    self._waiting += 1
                    self._queue.wait()
                    self._waiting -= 1
                    continue
                self._busy, groups, upto, self._pending = True, self._pending, self._queued, {}
                self._queue.release()
                try:
                    for log, lines in groups.items():
                        self.catalog.append_shared(log, "".join(lines).encode())
                finally:
                    self._queue.acquire()
                    self._busy, self._written = False, upto
                    if self._waiting:  # a map on one thread (the usual) has no one to wake
                        self._queue.notify_all()


__all__ = [
    "BLOBS",
    "ENTRIES",
    "CacheEntry",
    "CacheError",
    "CacheMode",
    "Hit",
    "StepCache",
    "cache_key",
    "entries",
    "remove",
]
