"""Step caching across runs, keyed by content.

A task's key is the sha256 of: its definition (command, command type, returns, catalog
patterns, cache version), its code (a python function's module source and that of every
module of the user's it imports, transitively: :mod:`conveyor.step.codekey`; a notebook's
file; a shell command is its text), the values of the parameters it receives (JSON values as
canonical JSON, other objects by the sha256 of their pickle), the environment variables its
scope sets (a loop's ``index_as``, which a python step may read from ``os.environ``), and
the sha256 of every file its ``catalog.get`` brought in. A step after a changed step is run
again only if the values it receives changed: its key sees them, not the step before's code.

Entries live in the catalog, outside any run (``_shared/cache/``): an index entry per key
(``entries/KEY.json``) and content-addressed blobs (``blobs/SHA256``: object returns and
``catalog.put`` files). Blobs are written first and the entry last, each atomically, so a
reader sees a whole entry or none; two runs filling the same key leave one valid entry.
A blob whose bytes no longer match their sha256 makes the entry a miss (said once), never a
wrong result.
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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TypedDict

from pydantic import BaseModel

from conveyor.catalog.store import SharedStore, _inside
from conveyor.jsontypes import JSONObject, JSONValue
from conveyor.spec.models import CacheSpec, TaskNode
from conveyor.step.codekey import code_digest
from conveyor.step.params import resolve_callable

PREFIX = "cache/"
ENTRIES = PREFIX + "entries/"
BLOBS = PREFIX + "blobs/"
KEY_VERSION = 2  # 2: the environment and imported modules are in the key


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


class CacheEntry(TypedDict):
    """A cache entry as :meth:`StepCache.fill` writes it (``entries/KEY.json``). Entries
    are read back as plain JSON and narrowed: a file may be damaged or from another version."""

    key: str
    run_id: str
    pipeline: str | None
    step: str
    created: float
    returns: JSONObject
    metrics: JSONObject
    #: Object returns and ``catalog.put`` files by name: the sha256 of their blob.
    objects: dict[str, str]
    files: dict[str, str]
    size: int


def _number(value: JSONValue) -> float:
    """A number an entry holds (its ``created`` time, its ``size``); 0 when absent."""
    return float(value) if isinstance(value, int | float | str) and value else 0.0


def _digests(value: JSONValue) -> dict[str, str]:
    """An entry's ``objects`` or ``files``: blob digests by name."""
    return {k: v for k, v in value.items() if isinstance(v, str)} if isinstance(value, dict) else {}


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
    """A parameter as the key sees it: JSON as itself, anything else by its pickle's hash;
    a partition by its files' URLs and versions."""
    identity = getattr(value, "cache_identity", None)
    if callable(identity):
        return {"$files": identity()}
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    try:
        json.dumps(value, sort_keys=True, allow_nan=True)
        return value
    except (TypeError, ValueError):
        return {"$sha256": hashlib.sha256(pickle.dumps(value)).hexdigest()}


def digest(value: object) -> str:
    """sha256 of a parameter's value as the key sees it (see :func:`_value`)."""
    text = json.dumps(_value(value), sort_keys=True, separators=(",", ":"), allow_nan=True, default=str)
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
    code, names = _code(node, workdir)
    chosen = sorted(params) if names is None else [n for n in names if n in params]
    received = {n: hashed(params[n]) for n in chosen if n not in spec.ignore}
    environment = {n: v for n, v in (env or {}).items() if n not in spec.ignore}
    definition = {
        "command": node.command,
        "command_type": node.command_type,
        "returns": [r.model_dump(mode="json") for r in node.returns],
        "catalog": node.catalog.model_dump(mode="json") if node.catalog else None,
        "version": spec.version,
    }
    text = json.dumps(
        {
            "v": KEY_VERSION,
            "definition": definition,
            "code": code,
            "params": received,
            "env": environment,
            "files": dict(fetched),
        },
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()


class StepCache:
    """Lookups and fills of one run's steps against the catalog's cache entries."""

    def __init__(
        self, catalog: SharedStore, default: bool | CacheSpec | None, mode: CacheMode = CacheMode.USE
    ):
        self.catalog = catalog
        self.default = default
        self.mode = mode
        self.digests = Digests()
        self._warned: set[str] = set()

    def policy(self, node: TaskNode) -> CacheSpec | None:
        """This step's cache settings in this run (None: not cached)."""
        if self.mode is CacheMode.OFF:
            return None
        return policy(node, self.default)

    def lookup(self, key: str, spec: CacheSpec) -> tuple[Hit | None, str | None]:
        """The entry for ``key`` if it is whole, fresh and intact; else None, and why not
        when it is worth saying (a corrupted or expired entry)."""
        if self.mode is not CacheMode.USE:
            return None, None
        raw = self.catalog.get_shared(ENTRIES + key + ".json")
        if raw is None:
            return None, None
        try:
            entry: JSONObject = json.loads(raw)
        except ValueError:
            return None, self._once(key, "its cache entry is unreadable; running it again")
        if spec.ttl_seconds is not None and time.time() - _number(entry.get("created")) > spec.ttl_seconds:
            return None, f"its cache entry is older than ttl_seconds ({spec.ttl_seconds:g}); running it again"
        hit = Hit(key, str(entry.get("run_id")), _object(entry.get("returns")), _object(entry.get("metrics")))
        for kind, target in (("objects", hit.objects), ("files", hit.files)):
            for name, digest in _digests(entry.get(kind)).items():
                data = self.catalog.get_shared(BLOBS + digest)
                if data is None or hashlib.sha256(data).hexdigest() != digest:
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
    ) -> None:
        """Keep a succeeded attempt's results under ``key``: blobs first, then the entry."""
        if self.mode is CacheMode.OFF:
            return
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
            digest = hashlib.sha256(data).hexdigest()
            self.catalog.put_shared(BLOBS + digest, data)
            entry["objects"][name] = digest
            entry["size"] += len(data)
        for name, local in files.items():
            data = local.read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            self.catalog.put_shared(BLOBS + digest, data)
            entry["files"][name] = digest
            entry["size"] += len(data)
        self.catalog.put_shared(ENTRIES + key + ".json", json.dumps(entry, default=str).encode())


def entries(catalog: SharedStore) -> list[JSONObject]:
    """Every cache entry (``conveyor cache list``), newest first: as read, JSON (see
    :class:`CacheEntry` for what it normally holds)."""
    found: list[JSONObject] = []
    for name, raw in catalog.shared(ENTRIES).items():
        try:
            entry: JSONObject = json.loads(raw)
        except ValueError:
            entry = {"key": name.rsplit("/", 1)[-1].removesuffix(".json"), "unreadable": True}
        found.append(entry)
    return sorted(found, key=lambda e: _number(e.get("created")), reverse=True)


def remove(catalog: SharedStore, chosen: Sequence[JSONObject]) -> int:
    """Delete the entries ``chosen``, and the blobs no remaining entry refers to."""
    keep: set[str] = set()
    gone = {str(e.get("key")) for e in chosen}
    for entry in entries(catalog):
        if str(entry.get("key")) not in gone:
            keep.update(_digests(entry.get("objects")).values())
            keep.update(_digests(entry.get("files")).values())
    for entry in chosen:
        catalog.delete_shared(ENTRIES + str(entry.get("key")) + ".json")
        for digest in [*_digests(entry.get("objects")).values(), *_digests(entry.get("files")).values()]:
            if digest not in keep:
                catalog.delete_shared(BLOBS + digest)
    return len(chosen)
