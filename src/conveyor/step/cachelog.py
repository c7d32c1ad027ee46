"""Where the step cache keeps its entries: one log per step, content-addressed blobs.

The entries of one step (one definition and code: the per-step part of the key, whose first
16 hex digits begin every key of it) live together, one JSON line each, in the log
``_shared/cache/steps/PREFIX.jsonl``: a map of 100,000 items is one file read once per run,
not 100,000 files. Lines are appended whole (one ``write`` on a local ``O_APPEND`` file, a
part of their own elsewhere: :meth:`SharedStore.append_shared`), so several processes filling
one step never mix their lines; a torn last line (a crash mid-write) is skipped; of two lines
for one key the later wins. Object returns and ``catalog.put`` files are blobs named by their
sha256 (``blobs/SHA256``), written before the line that refers to them.

Entries of key version 2 (one file per entry, ``entries/KEY.json``) are never looked up
again: their keys are not the keys of this version. ``conveyor cache list`` still shows them
and ``conveyor cache clear`` removes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

from conveyor.catalog.store import PARTS, SharedStore
from conveyor.jsontext import compact, flat, loads, string
from conveyor.jsontypes import JSONObject, JSONValue

PREFIX = "cache/"
ENTRIES = PREFIX + "entries/"  # key version 2: one file per entry (read by list and clear only)
STEPS = PREFIX + "steps/"
BLOBS = PREFIX + "blobs/"
#: The hex digits of a key that name its step's log.
STEP_DIGITS = 16


class CacheEntry(TypedDict):
    """A cache entry as :meth:`StepCache.fill` writes it (a line of its step's log). Entries
    are read back as plain JSON and narrowed: a line may be damaged or from another version."""

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


def log_of(key: str) -> str:
    """The log that holds ``key``'s entry: its step's."""
    return f"{STEPS}{key[:STEP_DIGITS]}.jsonl"


def line(key: str, text: str) -> str:
    """One entry as its log keeps it: the key, a tab, the entry's JSON ``text``, a newline
    (the key first, so that loading a log parses only the entries looked up)."""
    return f"{key}\t{text}\n"


def plain_entry(
    key: str,
    run_id: str,
    pipeline: str | None,
    step: str,
    created: float,
    returns: JSONObject,
    metrics: JSONObject,
) -> str:
    """``compact(entry)`` of an entry with no objects or files (a map item's, most), written
    out in one format (tested equal): what a map's fill pays per item."""
    if type(created) is not float or created - created != 0.0:
        return compact(
            {"key": key, "run_id": run_id, "pipeline": pipeline, "step": step, "created": created,
             "returns": returns, "metrics": metrics, "objects": {}, "files": {}, "size": 0}
        )  # fmt: skip
    named = "null" if pipeline is None else string(pipeline)
    kept = flat(returns) if returns else "{}"
    measured = compact(metrics) if metrics else "{}"
    return (
        f'{{"key":{string(key)},"run_id":{string(run_id)},"pipeline":{named},"step":{string(step)},'
        f'"created":{float.__repr__(created)},"returns":{kept},"metrics":{measured},'
        '"objects":{},"files":{},"size":0}'
    )


def index(data: bytes) -> dict[str, str]:
    """A log's entries by key, unparsed: a torn line is left out (the last one, or one a
    later append ended: it does not end its JSON object), the later of two lines for a key
    wins."""
    found: dict[str, str] = {}
    lines = data.decode(errors="replace").split("\n")
    for raw in lines[:-1]:  # what follows the last newline is torn (or empty)
        key, tab, text = raw.partition("\t")
        if tab and text.endswith("}"):
            found[key] = text
    return found


def number(value: JSONValue) -> float:
    """A number an entry holds (its ``created`` time, its ``size``); 0 when absent."""
    return float(value) if isinstance(value, int | float | str) and value else 0.0


def digests(value: JSONValue) -> dict[str, str]:
    """An entry's ``objects`` or ``files``: blob digests by name."""
    return {k: v for k, v in value.items() if isinstance(v, str)} if isinstance(value, dict) else {}


def parsed(key: str, text: str | bytes) -> JSONObject:
    """An entry's JSON; ``{"key": key, "unreadable": True}`` when it is damaged."""
    try:
        entry = loads(text)
    except ValueError:
        return {"key": key, "unreadable": True}
    return entry if isinstance(entry, dict) else {"key": key, "unreadable": True}


def _logs(catalog: SharedStore) -> dict[str, bytes]:
    """Every step's log, by its key in the store (a log's parts read with it)."""
    found = catalog.shared(STEPS)
    names = {name.split(PARTS, 1)[0] for name in found}
    parted = {name.split(PARTS, 1)[0] for name in found if PARTS in name}
    # A log kept whole (a local catalog's) is read once; one in parts, with its parts.
    return {n: catalog.read_appended(n) if n in parted else found[n] for n in sorted(names)}


def entries(catalog: SharedStore) -> list[JSONObject]:
    """Every cache entry (``conveyor cache list``), newest first: as read, JSON (see
    :class:`CacheEntry` for what it normally holds)."""
    found: list[JSONObject] = []
    for name, raw in catalog.shared(ENTRIES).items():
        found.append(parsed(name.rsplit("/", 1)[-1].removesuffix(".json"), raw))
    for data in _logs(catalog).values():
        found.extend(parsed(key, text) for key, text in index(data).items())
    return sorted(found, key=lambda e: number(e.get("created")), reverse=True)


def remove(catalog: SharedStore, chosen: Sequence[JSONObject]) -> int:
    """Delete the entries ``chosen``, and the blobs no remaining entry refers to. A step's
    log is written again without them (a fill by a run going on meanwhile may be lost: a
    miss later, never a wrong hit)."""
    gone = {str(e.get("key")) for e in chosen}
    for entry in chosen:
        catalog.delete_shared(ENTRIES + str(entry.get("key")) + ".json")
    for name, data in _logs(catalog).items():
        held = index(data)
        kept = {k: v for k, v in held.items() if k not in gone}
        if len(kept) == len(held):
            continue
        catalog.replace_appended(name, "".join(f"{k}\t{v}\n" for k, v in kept.items()).encode())
    keep: set[str] = set()
    for entry in entries(catalog):
        keep.update(digests(entry.get("objects")).values())
        keep.update(digests(entry.get("files")).values())
    for entry in chosen:
        for digest in [*digests(entry.get("objects")).values(), *digests(entry.get("files")).values()]:
            if digest not in keep:
                catalog.delete_shared(BLOBS + digest)
    return len(chosen)
