"""Partitioned maps: list a source (any fsspec URL or glob, or a list parameter), group the
items into partitions, and keep partition manifests in the catalog, not in parameters, so
that a million input files is a normal case.

A file is identified by its URL and a version: its ETag where the store has one, else its
modification time, else its size. Incremental maps skip files whose (URL, version) a
successful partition of an earlier run already processed; that ledger is kept in the
catalog too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from conveyor.catalog.store import Catalog, SharedStore
from conveyor.errors import ConveyorError
from conveyor.jsontypes import JSONObject
from conveyor.spec.models import PartitionSpec

GLOB = re.compile(r"[*?\[]")


class PartitionError(ConveyorError, ValueError):
    """The source cannot be listed or grouped (the message says why)."""


@dataclass(frozen=True)
class FileItem:
    """One listed file: its URL and what identifies its version (ETag, mtime or size)."""

    url: str
    size: int | None = None
    version: str | None = None

    def identity(self) -> str:
        return f"{self.url}\x1f{self.version if self.version is not None else self.size}"


def _version(detail: Mapping[str, object]) -> str | None:
    for key in ("ETag", "etag", "mtime", "LastModified", "last_modified", "created"):
        value = detail.get(key)
        if value is not None:
            return str(value).strip('"')
    return None


def _file_item(url: str, detail: Mapping[str, object]) -> FileItem:
    """A listed file from what fsspec says of it (its ``detail``: size, type, ETag...)."""
    size = detail.get("size")
    return FileItem(url, size if isinstance(size, int) else None, _version(detail))


def list_source(spec: PartitionSpec, values: object = None) -> list[FileItem]:
    """Every item of the source, sorted by URL (parameters keep their order)."""
    if spec.parameter is not None:
        if not isinstance(values, list | tuple):
            raise PartitionError(
                f"partition parameter '{spec.parameter}' must be a list, found {type(values).__name__}"
            )
        return [FileItem(str(v)) for v in values]
    import fsspec.core

    source = str(spec.source)
    try:
        fs, path = fsspec.core.url_to_fs(source, **spec.storage_options)
        if GLOB.search(path):
            found = fs.glob(path, detail=True)
        elif fs.isdir(path):
            found = fs.find(path, detail=True)
        else:
            found = {path: fs.info(path)}
    except FileNotFoundError:
        return []
    except Exception as exc:  # a store that cannot be listed: say which and why
        raise PartitionError(f"cannot list {source}: {type(exc).__name__}: {exc}") from None
    local = "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))
    items = []
    for name, detail in found.items():
        if detail.get("type") == "directory":
            continue
        items.append(_file_item(name if local else fs.unstrip_protocol(name), detail))
    items.sort(key=lambda item: item.url)
    return items


def group(items: Sequence[FileItem], spec: PartitionSpec) -> list[list[FileItem]]:
    """Files into partitions by the spec's strategy (count, bytes or group-by)."""
    if spec.strategy == "count":
        return [list(items[i : i + spec.size]) for i in range(0, len(items), spec.size)]
    if spec.strategy == "bytes":
        target = int(spec.target_bytes or 1)
        partitions: list[list[FileItem]] = []
        current: list[FileItem] = []
        total = 0
        for item in items:
            size = item.size or 0
            if current and total + size > target:
                partitions.append(current)
                current, total = [], 0
            current.append(item)
            total += size
        if current:
            partitions.append(current)
        return partitions
    pattern = re.compile(str(spec.pattern))
    keyed: dict[str, list[FileItem]] = {}
    unmatched = []
    for item in items:
        match = pattern.search(item.url)
        if match is None:
            unmatched.append(item.url)
            continue
        keyed.setdefault(match.group(1) or "", []).append(item)
    if unmatched:
        raise PartitionError(
            f"{len(unmatched)} items do not match pattern {spec.pattern!r}, e.g. {unmatched[0]!r}; "
            "every item needs a partition key"
        )
    return [keyed[key] for key in sorted(keyed)]


def _encode(items: Iterable[FileItem]) -> bytes:
    return json.dumps([[i.url, i.size, i.version] for i in items], separators=(",", ":")).encode()


def _decode(data: bytes) -> list[FileItem]:
    return [FileItem(u, s, v) for u, s, v in json.loads(data)]


class PartitionFiles(list[str]):
    """A partition as its iteration receives it: the files' URLs. It also carries what
    identifies their versions, which a cache key uses: a changed file changes the key."""

    versions: list[str]

    def __init__(self, items: Sequence[FileItem]) -> None:
        super().__init__(item.url for item in items)
        self.versions = [item.identity() for item in items]

    def cache_identity(self) -> list[str]:
        """URLs and versions: equal exactly when the partition's files are the same."""
        return list(self.versions)


@dataclass(frozen=True)
class PartitionPlan:
    """Where a partitioned map's manifests are: what the map's record keeps beside its
    items, so that a resumed run and every pod of an Argo run use the same partitions.
    JSON only at the record's edge (:meth:`to_json`, :meth:`from_json`), where
    :class:`Partitions` writes and reads it."""

    manifest: str
    total: int
    sizes: list[int]
    locations: list[str]

    def to_json(self) -> JSONObject:
        """The keys a map's record info has always had for its plan."""
        return {
            "partitions": self.total,
            "manifest": self.manifest,
            "locations": list(self.locations),
            "sizes": list(self.sizes),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> PartitionPlan | None:
        """The plan a map's record info holds; None when it holds none (not planned yet)."""
        manifest, total = data.get("manifest"), data.get("partitions")
        sizes, locations = data.get("sizes"), data.get("locations")
        if not (
            isinstance(manifest, str)
            and isinstance(total, int)
            and isinstance(sizes, list)
            and isinstance(locations, list)
        ):
            return None
        return cls(manifest, total, [s for s in sizes if isinstance(s, int)], [str(loc) for loc in locations])


@dataclass
class Partitions(Sequence[list[str]]):
    """A planned partitioned map: its manifests live in the catalog under ``prefix``."""

    catalog: Catalog
    run_id: str
    prefix: str
    total: int
    sizes: list[int]
    locations: list[str]

    def __len__(self) -> int:
        return self.total

    def files(self, index: int) -> list[FileItem]:
        return _decode(self.catalog.get_bytes(self.locations[index]))

    def __getitem__(self, index: int) -> list[str]:  # type: ignore[override]
        """What the iteration receives as ``iterate_as``: its partition's URLs."""
        return PartitionFiles(self.files(index))

    def record(self) -> JSONObject:
        """What the map's run log record keeps, so that a resumed run reuses the same plan."""
        return PartitionPlan(self.prefix, self.total, self.sizes, self.locations).to_json()

    @classmethod
    def from_record(cls, catalog: Catalog, run_id: str, data: Mapping[str, object]) -> Partitions:
        """The partitions a map's record info planned (see :meth:`record`)."""
        plan = PartitionPlan.from_json(data)
        if plan is None:
            raise PartitionError(
                "the map's record holds no whole partition plan (manifest, partitions, sizes, locations)"
            )
        return cls(catalog, run_id, plan.manifest, plan.total, plan.sizes, plan.locations)


def ledger_prefix(pipeline: str, slug: str) -> str:
    """Where an incremental map's ledger lives in the catalog."""
    return f"ledger/{pipeline}/{slug}/"


def processed(catalog: SharedStore, prefix: str) -> set[str]:
    """Identities of files that successful partitions of earlier runs processed."""
    seen: set[str] = set()
    for data in catalog.shared(prefix).values():
        seen.update(json.loads(data))
    return seen


def mark_processed(catalog: SharedStore, prefix: str, run_id: str, index: int, files: list[FileItem]) -> None:
    """Record a succeeded partition's files in the ledger."""
    catalog.put_shared(f"{prefix}{run_id}-{index}.json", json.dumps([f.identity() for f in files]).encode())


def plan(
    spec: PartitionSpec,
    values: object,
    catalog: Catalog,
    run_id: str,
    prefix: str,
    skip: set[str] | None = None,
) -> tuple[Partitions, int]:
    """List, filter out already-processed files, group, and write one manifest per partition.

    Returns the partitions and how many files were skipped as already processed.
    """
    items = list_source(spec, values)
    skipped = 0
    if skip:
        kept = [item for item in items if item.identity() not in skip]
        skipped = len(items) - len(kept)
        items = kept
    groups = group(items, spec)
    locations = []
    for index, members in enumerate(groups):
        entry = catalog.put_bytes(run_id, f"{prefix}/{index}.json", _encode(members))
        locations.append(str(entry.location))
    return Partitions(catalog, run_id, prefix, len(groups), [len(g) for g in groups], locations), skipped
