"""Where a map's items come from (``executors.mapitems``): a list parameter, or partitions
planned once into the catalog and read back the same by a resumed run or a pod; an
incremental map leaves out what an earlier run's succeeded partitions processed."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.catalog.store import FsspecCatalog
from conveyor.executors.mapitems import MapItems
from conveyor.graph.kinds.base import NotReached, PlanError
from conveyor.graph.scope import Scope
from conveyor.spec.load import load_pipeline_text
from conveyor.spec.models import MapNode

PLAIN = """dag:
  start_at: each
  steps:
    each:
      type: map
      iterate_on: xs
      iterate_as: x
      branch: {start_at: w, steps: {w: {type: stub, next: success}}}
      next: success
"""
PARTITIONED = """dag:
  start_at: each
  steps:
    each:
      type: map
      partition: {source: "SOURCE", strategy: count, size: 2}
      incremental: INCREMENTAL
      iterate_as: files
      branch: {start_at: w, steps: {w: {type: stub, next: success}}}
      next: success
"""


def map_node(text: str) -> MapNode:
    node = load_pipeline_text(text, name="p").pipeline.dag.steps["each"]
    assert isinstance(node, MapNode)
    return node


def partitioned(root: Path, count: int, incremental: bool = False) -> MapNode:
    (root / "data").mkdir(exist_ok=True)
    for i in range(count):
        (root / "data" / f"f{i}.txt").write_text("x" * (i + 1))
    source = str(root / "data" / "*.txt")
    return map_node(PARTITIONED.replace("SOURCE", source).replace("INCREMENTAL", str(incremental).lower()))


def test_a_plain_map_iterates_on_its_list(tmp_path: Path) -> None:
    maps = MapItems(FsspecCatalog(str(tmp_path / "catalog")), "r1", "p")
    node = map_node(PLAIN)
    items, info = maps.plan(node, ["each"], Scope(None, {"xs": [3, 1, 2]}))
    assert list(items) == [3, 1, 2] and info == {"items": 3}
    assert maps.recorded(node, ["each"], Scope(None, {"xs": [3, 1, 2]}), info) == [3, 1, 2]
    with pytest.raises(PlanError, match="map iterates on 'xs', which must be a list; found int"):
        maps.plan(node, ["each"], Scope(None, {"xs": 5}))


def test_partitions_are_planned_once_and_read_back(tmp_path: Path) -> None:
    catalog = FsspecCatalog(str(tmp_path / "catalog"))
    maps, node = MapItems(catalog, "r1", "p"), partitioned(tmp_path, 5)
    items, info = maps.plan(node, ["each"], Scope())
    assert len(items) == 3 and info["items"] == 3 and info["skipped"] == 0 and info["sizes"] == [2, 2, 1]
    named = [Path(url).name for part in items for url in part]
    assert sorted(named) == [f"f{i}.txt" for i in range(5)]
    # A pod after fan-out, or a resumed run, reads the same plan from the record, even if
    # the source has changed since.
    (tmp_path / "data" / "f9.txt").write_text("new")
    again = maps.recorded(node, ["each"], Scope(), info)
    assert [list(p) for p in again] == [list(p) for p in items]
    reused, reused_info = maps.plan(node, ["each"], Scope(), prior=info)
    assert len(reused) == 3 and reused_info["locations"] == info["locations"]


def test_a_pod_before_fan_out_is_told_so(tmp_path: Path) -> None:
    maps, node = MapItems(FsspecCatalog(str(tmp_path / "catalog")), "r1", "p"), partitioned(tmp_path, 2)
    with pytest.raises(NotReached, match="map 'each' has not planned its partitions yet"):
        maps.recorded(node, ["each"], Scope(), {"items": 1})


def test_an_incremental_map_skips_what_succeeded_before(tmp_path: Path) -> None:
    catalog = FsspecCatalog(str(tmp_path / "catalog"))
    node = partitioned(tmp_path, 4, incremental=True)
    first = MapItems(catalog, "r1", "p")
    items, _ = first.plan(node, ["each"], Scope())
    first.done(node, ["each"], 0, items)  # partition 0 succeeded; partition 1 did not
    second, info = MapItems(catalog, "r2", "p").plan(node, ["each"], Scope())
    assert info["skipped"] == 2 and len(second) == 1
    assert sorted(second[0]) == sorted(items[1])
    # Another pipeline's ledger is its own.
    _, elsewhere = MapItems(catalog, "r3", "other").plan(node, ["each"], Scope())
    assert elsewhere["skipped"] == 0
