"""A step's cache entries kept in one append-only log: appends of several processes never
mix, a torn last line is skipped, later lines win, stores without appends keep parts, the
per-step part of a key is worked out once per run, and version-2 entry files are listed and
cleared but no longer looked up."""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conveyor.catalog.store import FsspecCatalog, InProcessCatalog, SharedStore
from conveyor.jsontext import compact
from conveyor.spec.models import CacheSpec, TaskNode
from conveyor.step import cache as cache_module
from conveyor.step.cache import BLOBS, ENTRIES, CacheMode, StepCache, cache_key, entries, remove
from conveyor.step.cachelog import STEPS, log_of, plain_entry
from support import need_service
from support.cacheworkers import PER_PROCESS, append_many
from support.services import S3

NODE = TaskNode.model_validate({"command": "json.dumps", "returns": ["r"], "next": "success"})


def _fill(cache: StepCache, key: str, value: int, run_id: str = "run-1") -> None:
    cache.fill(key, run_id, ["fan", str(value), "touch"], "p", {"r": value}, {}, {}, {})


def test_processes_appending_one_steps_log_never_mix_their_lines(tmp_path: Path) -> None:
    root = str(tmp_path / "catalog")
    spawn = multiprocessing.get_context("spawn")
    procs = [spawn.Process(target=append_many, args=(root, w)) for w in range(3)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=120)
    assert [proc.exitcode for proc in procs] == [0, 0, 0]
    logs = list((tmp_path / "catalog/_shared" / STEPS).iterdir())
    assert [log.name for log in logs] == ["a" * 16 + ".jsonl"]
    cache = StepCache(FsspecCatalog(root), True)
    for w in range(3):
        for i in range(0, PER_PROCESS, 37):
            hit, why = cache.lookup(f"{'a' * 16}{w:04d}{i:06d}", CacheSpec())
            assert why is None and hit is not None and hit.run_id == f"w{w}"
    assert len(entries(FsspecCatalog(root))) == 3 * PER_PROCESS


def test_a_torn_last_line_is_skipped_and_the_next_append_starts_afresh(tmp_path: Path) -> None:
    root = str(tmp_path / "catalog")
    cache = StepCache(FsspecCatalog(root), True)
    _fill(cache, "b" * 16 + "1", 1)
    log = tmp_path / "catalog/_shared" / log_of("b" * 16)
    whole = log.read_bytes()
    log.write_bytes(whole + whole[: len(whole) // 2])  # a crash in the middle of a second line
    reader = StepCache(FsspecCatalog(root), True)
    assert reader.lookup("b" * 16 + "1", CacheSpec())[0] is not None
    assert reader.lookup("b" * 16 + "2", CacheSpec())[0] is None
    _fill(StepCache(FsspecCatalog(root), True), "b" * 16 + "2", 2)  # another run, later
    again = StepCache(FsspecCatalog(root), True)
    hit = again.lookup("b" * 16 + "2", CacheSpec())[0]
    assert hit is not None and hit.returns == {"r": 2}
    hit = again.lookup("b" * 16 + "1", CacheSpec())[0]  # the torn copy does not hide the whole one
    assert hit is not None and hit.returns == {"r": 1}
    assert sorted(str(e["key"]) for e in entries(FsspecCatalog(root))) == ["b" * 16 + "1", "b" * 16 + "2"]


def test_a_refreshed_entry_wins_and_a_fill_is_seen_in_the_same_run(tmp_path: Path) -> None:
    catalog = FsspecCatalog(str(tmp_path / "catalog"))
    cache = StepCache(catalog, True)
    key = "c" * 16 + "1"
    assert cache.lookup(key, CacheSpec())[0] is None  # the log is read (empty) here
    _fill(cache, key, 1, "first")
    hit = cache.lookup(key, CacheSpec())[0]
    assert hit is not None and hit.run_id == "first"
    _fill(StepCache(catalog, True, CacheMode.REFRESH), key, 2, "refreshed")
    hit = StepCache(catalog, True).lookup(key, CacheSpec())[0]
    assert hit is not None and (hit.run_id, hit.returns) == ("refreshed", {"r": 2})
    assert [e["run_id"] for e in entries(catalog)] == ["refreshed"]


def _parts_kept_and_cleared(catalog: SharedStore, tmp_path: Path) -> None:
    cache = StepCache(catalog, True)
    out = tmp_path / "out.txt"
    out.write_text("kept")
    for i in range(3):
        cache.fill(f"{'d' * 16}{i}", "run", ["s"], "p", {"r": i}, {}, {"o": b"pickle"}, {"out.txt": out})
    reader = StepCache(catalog, True)
    hit = reader.lookup("d" * 16 + "2", CacheSpec())[0]
    assert hit is not None and hit.returns == {"r": 2} and hit.files == {"out.txt": b"kept"}
    found = entries(catalog)
    assert len(found) == 3
    assert remove(catalog, found[:2]) == 2
    assert [e["key"] for e in entries(catalog)] == [found[2]["key"]]
    assert len(catalog.shared(BLOBS)) == 2  # still used by the entry kept
    remove(catalog, entries(catalog))
    assert catalog.shared("cache/") == {}


@pytest.mark.parametrize("kind", ["memory", "in-process"])
def test_stores_without_appends_keep_parts_and_clear_them(kind: str, tmp_path: Path) -> None:
    catalog: SharedStore = (
        FsspecCatalog(f"memory://cache-log-{tmp_path.name}") if kind == "memory" else InProcessCatalog()
    )
    _parts_kept_and_cleared(catalog, tmp_path)


@pytest.mark.s3
def test_a_catalog_on_s3_keeps_a_steps_entries_as_parts(tmp_path: Path) -> None:
    try:
        server = S3().start()
        import s3fs  # noqa: F401
    except Exception as exc:  # no moto, no s3fs, or the port would not open
        need_service("s3", f"the S3 endpoint could not start: {exc}")
    try:
        bucket = server.bucket("cache-" + uuid.uuid4().hex[:10])
        catalog = FsspecCatalog(f"s3://{bucket}/catalog", server.options)
        _parts_kept_and_cleared(catalog, tmp_path)
    finally:
        server.stop()


def test_the_per_step_part_is_worked_out_once_per_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real = cache_module.step_digest

    def counted(node: TaskNode, spec: CacheSpec, workdir: Path) -> tuple[str, list[str] | None]:
        calls.append(node.command)
        return real(node, spec, workdir)

    monkeypatch.setattr(cache_module, "step_digest", counted)
    cache = StepCache(InProcessCatalog(), True)
    spec = cache.policy(NODE)
    assert spec is not None and cache.policy(NODE) is spec
    keys = {cache.key(NODE, spec, {"obj": i}, tmp_path, {}) for i in range(200)}
    assert len(keys) == 200 and calls == ["json.dumps"]
    # The same keys as computed from scratch, all in the step's log.
    assert cache.key(NODE, spec, {"obj": 7}, tmp_path, {}) == cache_key(NODE, spec, {"obj": 7}, tmp_path, {})
    assert len({k[:16] for k in keys}) == 1
    # A value that is not a scalar is keyed by its digest, never confused with a scalar.
    assert cache.key(NODE, spec, {"obj": [1]}, tmp_path, {}) != cache.key(
        NODE, spec, {"obj": 1}, tmp_path, {}
    )
    assert cache.key(NODE, spec, {"obj": "1"}, tmp_path, {}) != cache.key(
        NODE, spec, {"obj": 1}, tmp_path, {}
    )


def test_version_2_entry_files_are_listed_and_cleared_not_looked_up(tmp_path: Path) -> None:
    catalog = FsspecCatalog(str(tmp_path / "catalog"))
    old = {"key": "e" * 64, "run_id": "old", "step": "s", "created": 1.0, "objects": {}, "files": {}}
    catalog.put_shared(ENTRIES + "e" * 64 + ".json", json.dumps(old).encode())
    assert StepCache(catalog, True).lookup("e" * 64, CacheSpec())[0] is None
    assert [e["run_id"] for e in entries(catalog)] == ["old"]
    assert remove(catalog, entries(catalog)) == 1
    assert entries(catalog) == [] and catalog.shared(ENTRIES) == {}


class SlowAppends(InProcessCatalog):
    """An in-memory store whose appends take a while (as on a busy disk), counted."""

    def __init__(self) -> None:
        super().__init__()
        self.appends = 0

    def append_shared(self, key: str, data: bytes) -> None:
        time.sleep(0.01)
        self.appends += 1
        super().append_shared(key, data)


def test_fills_of_a_maps_threads_are_written_in_groups(tmp_path: Path) -> None:
    catalog = SlowAppends()
    cache = StepCache(catalog, True)
    keys = [f"{'f' * 16}{i:04d}" for i in range(80)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: _fill(cache, k, int(k[16:])), keys))
    assert catalog.appends < len(keys) / 2  # lines queued while one was written went together
    reader = StepCache(catalog, True)
    assert all(reader.lookup(k, CacheSpec())[0] is not None for k in keys)
    assert len(catalog.read_appended(log_of(keys[0])).splitlines()) == len(keys)


def _scalars_and_more() -> st.SearchStrategy[object]:
    scalar = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8)
    return scalar | st.lists(scalar, max_size=3) | st.dictionaries(st.text(max_size=4), scalar, max_size=2)


@settings(max_examples=300, deadline=None)
@given(
    item=_scalars_and_more(),
    fixed=st.dictionaries(st.sampled_from(["a", "item0", "item", "z", "ü"]), _scalars_and_more(), max_size=4),
    ignore=st.lists(st.sampled_from(["a", "item", "z"]), max_size=2),
    takes=st.sampled_from([None, ["item"], ["z", "item", "a"], ["a"]]),
)
def test_a_maps_item_keyer_gives_the_key_of_each_item(
    item: object, fixed: dict[str, object], ignore: list[str], takes: list[str] | None
) -> None:
    """StepCache.item_keyer (a map's keys, made once per map) gives item_key's keys: for
    scalar and other items, fixed parameters before and after the item's name, ignored
    names, functions taking all parameters or some."""
    cache = StepCache(InProcessCatalog(), True)
    spec = CacheSpec(ignore=ignore)
    params = {n: v for n, v in fixed.items() if n != "item"}
    cache._steps[(id(NODE), "/w")] = (NODE, spec, "f" * 64, takes)
    keyer = cache.item_keyer(NODE, spec, params, Path("/w"), "item")
    assert keyer(item) == cache.key(NODE, spec, {**params, "item": item}, Path("/w"), {})
    assert keyer(item).startswith("f" * 16)


def test_a_maps_held_lines_are_written_at_its_end_at_a_group_or_when_old(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A map's items hold their entries' lines back (one write per group, not per item):
    a later lookup in the run sees them at once, the log has them after flush (the map's
    end), after HELD_LINES of them, or when the oldest has waited HELD_SECONDS."""
    root = str(tmp_path / "catalog")
    cache = StepCache(FsspecCatalog(root), True)
    prefix = "c" * 16
    log = tmp_path / "catalog/_shared" / log_of(prefix)

    def lines() -> int:
        return len(log.read_text().splitlines()) if log.exists() else 0

    assert cache.lookup(prefix + "0", CacheSpec()) == (None, None)  # the log's index is read
    for i in range(3):
        cache.fill(f"{prefix}{i}", "run-1", ["fan", str(i), "t"], "p", {"r": i}, {}, {}, {}, hold=True)
    assert lines() == 0
    hit = cache.lookup(prefix + "2", CacheSpec())[0]
    assert hit is not None and hit.returns == {"r": 2}
    assert cache.flush() is None
    assert lines() == 3
    for i in range(3, 3 + cache_module.HELD_LINES):
        cache.fill(f"{prefix}{i}", "run-1", ["fan", str(i), "t"], "p", {"r": i}, {}, {}, {}, hold=True)
    assert lines() == 3 + cache_module.HELD_LINES
    cache.fill(prefix + "x", "run-1", ["fan", "x", "t"], "p", {"r": 0}, {}, {}, {}, hold=True)
    cache.flush_old()  # the engine's tick: not a second old yet
    assert lines() == 3 + cache_module.HELD_LINES
    monkeypatch.setattr(cache_module, "HELD_SECONDS", 0.0)
    cache.flush_old()
    assert lines() == 4 + cache_module.HELD_LINES
    reader = StepCache(FsspecCatalog(root), True)
    assert all(
        reader.lookup(f"{prefix}{i}", CacheSpec())[0] is not None for i in range(3 + cache_module.HELD_LINES)
    )


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=400, deadline=None)
@given(
    key=st.text(max_size=70),
    run_id=st.text(max_size=30),
    pipeline=st.none() | st.text(max_size=10),
    step=st.text(max_size=20),
    created=st.floats(allow_nan=True, allow_infinity=True) | st.integers(),
    returns=st.dictionaries(st.text(max_size=5), _JSON, max_size=3),
    metrics=st.dictionaries(st.text(max_size=5), _JSON, max_size=2),
)
def test_a_map_items_entry_text_is_the_entrys_json(
    key: str, run_id: str, pipeline: str | None, step: str, created: float, returns: dict[str, Any],
    metrics: dict[str, Any],
) -> None:  # fmt: skip
    """plain_entry (a map item's fill, written out in one format) is compact(entry)."""
    entry = {
        "key": key, "run_id": run_id, "pipeline": pipeline, "step": step, "created": created,
        "returns": returns, "metrics": metrics, "objects": {}, "files": {}, "size": 0,
    }  # fmt: skip
    assert plain_entry(key, run_id, pipeline, step, created, returns, metrics) == compact(entry)


def test_held_lines_that_cannot_be_written_are_said_once_by_flush(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk under a map's fills: no item is told (its result is fine), the map's end
    hears how many entries were lost and why, once."""
    catalog = FsspecCatalog(str(tmp_path / "catalog"))
    cache = StepCache(catalog, True)

    def full(key: str, data: bytes) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(catalog, "append_shared", full)
    count = 2 * cache_module.HELD_LINES + 10
    for i in range(count):  # no fill raises
        cache.fill(f"{'d' * 16}{i}", "run-1", ["m", str(i), "t"], "p", {"r": i}, {}, {}, {}, hold=True)
    lost = cache.flush()
    assert lost is not None and lost[0] == count and "No space left" in str(lost[1])
    assert cache.flush() is None  # said once


def test_a_parameter_that_cannot_be_hashed_is_a_cache_error_not_a_crash(tmp_path: Path) -> None:
    """A value neither JSON nor picklable (a lock) makes the attempt run uncached (a
    CacheError, which both paths say and go on from), on either way of making keys."""
    cache = StepCache(InProcessCatalog(), True)
    spec = CacheSpec()
    with pytest.raises(cache_module.CacheError, match="cannot be part of a key"):
        cache.key(NODE, spec, {"item": threading.Lock()}, tmp_path, {})
    keyer = cache.item_keyer(NODE, spec, {}, tmp_path, "item")
    with pytest.raises(cache_module.CacheError, match="cannot be part of a key"):
        keyer(threading.Lock())
    assert keyer(1) == cache.key(NODE, spec, {"item": 1}, tmp_path, {})
