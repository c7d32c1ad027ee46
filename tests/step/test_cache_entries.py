"""Cache entries as written (``StepCache.fill``) and as read back (``lookup``, ``entries``,
``remove``): what goes in comes out, and a damaged entry is read as far as it makes sense."""

from __future__ import annotations

import json
from pathlib import Path

from conveyor.catalog.store import FsspecCatalog
from conveyor.spec.models import CacheSpec
from conveyor.step.cache import BLOBS, ENTRIES, StepCache, entries, remove


def _filled(tmp_path: Path) -> tuple[FsspecCatalog, StepCache]:
    catalog = FsspecCatalog(str(tmp_path / "catalog"))
    cache = StepCache(catalog, True)
    out = tmp_path / "out.txt"
    out.write_text("hello")
    cache.fill(
        "k1",
        "run-1",
        ["load"],
        "etl",
        {"rows": [1, 2]},
        {"score": 0.5},
        {"model": b"pickled"},
        {"out.txt": out},
    )
    return catalog, cache


def test_a_filled_entry_is_found_whole(tmp_path: Path) -> None:
    _, cache = _filled(tmp_path)
    hit, why = cache.lookup("k1", CacheSpec())
    assert why is None and hit is not None
    assert (hit.run_id, hit.returns, hit.metrics) == ("run-1", {"rows": [1, 2]}, {"score": 0.5})
    assert hit.objects == {"model": b"pickled"}
    assert hit.files == {"out.txt": b"hello"}


def test_the_listing_reads_a_damaged_entry_without_failing(tmp_path: Path) -> None:
    catalog, cache = _filled(tmp_path)
    damaged = {"key": "k2", "created": None, "objects": ["not", "a", "mapping"], "size": "?"}
    catalog.put_shared(ENTRIES + "k2.json", json.dumps(damaged).encode())
    found = entries(catalog)
    assert [e["key"] for e in found] == ["k1", "k2"]  # newest first; no time counts as oldest
    assert found[0]["step"] == "load" and found[0]["pipeline"] == "etl" and found[0]["size"] == 12

    # Removing the damaged entry keeps the blobs of the whole one.
    assert remove(catalog, [found[1]]) == 1
    assert cache.lookup("k1", CacheSpec())[0] is not None
    assert remove(catalog, [found[0]]) == 1
    assert catalog.shared(BLOBS) == {}
    assert entries(catalog) == []
