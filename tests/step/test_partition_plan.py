"""A partitioned map's plan as a typed record: written into the map's info by
``Partitions.record()``, read back by ``Partitions.from_record()`` (resume, pods)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.catalog.store import FsspecCatalog
from conveyor.spec.models import PartitionSpec
from conveyor.step.partitions import PartitionError, PartitionPlan, Partitions, plan


def _planned(tmp_path: Path) -> Partitions:
    (tmp_path / "data").mkdir()
    for i in range(5):
        (tmp_path / "data" / f"f{i}.txt").write_text("x" * (i + 1))
    catalog = FsspecCatalog(str(tmp_path / "catalog"))
    spec = PartitionSpec(source=str(tmp_path / "data" / "*.txt"), size=2)
    parts, skipped = plan(spec, None, catalog, "run-1", "partitions/each")
    assert skipped == 0
    return parts


def test_the_record_keeps_the_keys_map_records_have_always_had(tmp_path: Path) -> None:
    parts = _planned(tmp_path)
    record = parts.record()
    assert list(record) == ["partitions", "manifest", "locations", "sizes"]
    assert record["partitions"] == 3
    assert record["manifest"] == "partitions/each"
    assert record["sizes"] == [2, 2, 1]


def test_a_plan_read_back_gives_the_same_partitions(tmp_path: Path) -> None:
    parts = _planned(tmp_path)
    # What a map's info holds after fan-out: the plan beside the kind's own keys.
    info = {**parts.record(), "items": 3, "skipped": 0}
    again = Partitions.from_record(parts.catalog, "run-1", info)
    assert len(again) == 3
    assert [again[i] for i in range(3)] == [parts[i] for i in range(3)]
    assert again[2] == [str(tmp_path / "data" / "f4.txt")]


def test_an_info_without_a_plan_holds_none() -> None:
    assert PartitionPlan.from_json({"items": 4}) is None
    assert PartitionPlan.from_json({"manifest": "m", "partitions": "3", "sizes": [], "locations": []}) is None
    plan_ = PartitionPlan.from_json(
        {"manifest": "m", "partitions": 1, "sizes": [4], "locations": ["a/0.json"]}
    )
    assert plan_ == PartitionPlan("m", 1, [4], ["a/0.json"])


def test_reading_partitions_from_an_info_without_a_plan_says_so(tmp_path: Path) -> None:
    catalog = FsspecCatalog(str(tmp_path / "catalog"))
    with pytest.raises(PartitionError, match="no whole partition plan"):
        Partitions.from_record(catalog, "run-1", {"items": 4})
