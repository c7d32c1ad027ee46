"""Kinds' typed info records: the JSON run logs always held loads and writes back unchanged,
and the summaries ``runs show`` and the UI print come from the records."""

from __future__ import annotations

import pytest

from conveyor.graph.kinds import Info, info_of
from conveyor.graph.kinds.conditional import ConditionalInfo
from conveyor.graph.kinds.loop import LoopInfo
from conveyor.graph.kinds.map import MapInfo
from conveyor.graph.kinds.task import TaskInfo

RECORDED = [
    ("map", {"items": 5, "failed": 2, "failed_items": [1, 3], "error": "boom", "manifest": "m.json"}),
    ("map", {"items": 3, "failed": 0, "returns": {"sq": [1, 4, 9]}}),
    ("loop", {"iterations": 3, "ended": "max_iterations", "error": "loop reached max_iterations"}),
    ("conditional", {"branch": "yes"}),
    ("task", {"cached": {"run": "r1", "key": "abcdef0123456789"}}),
    ("parallel", {}),
    ("no-such-kind", {"whatever": 1}),
]


@pytest.mark.parametrize(("kind", "data"), RECORDED)
def test_recorded_json_round_trips(kind: str, data: dict[str, object]) -> None:
    assert info_of(kind, data).to_json() == data


def test_records_are_the_kinds_own() -> None:
    assert type(info_of("map", {})) is MapInfo and type(info_of("loop", {})) is LoopInfo
    assert type(info_of("conditional", {})) is ConditionalInfo and type(info_of("task", {})) is TaskInfo
    assert type(info_of(None, {})) is Info


def test_wrong_types_are_dropped_not_errors() -> None:
    info = MapInfo.from_json({"items": "five", "failed_items": [1, "x", 2], "returns": [1]})
    assert info.items is None and info.failed_items == [1, 2] and info.returns is None


def test_summaries() -> None:
    items = MapInfo.from_json({"items": 20, "failed": 12, "failed_items": list(range(12)), "skipped": 4})
    assert items.summary() == (
        "20 items, 12 failed (failed items: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9…); 4 files already processed"
    )
    assert LoopInfo(iterations=2, failed_iteration=1).summary() == "2 iterations, iteration 1 failed"
    assert LoopInfo(iterations=3, ended="break").label() == "3 iterations"
    assert ConditionalInfo(branch="b").summary("no") == "branch b; no"
    assert TaskInfo(mocked=True).summary() == "mocked (not run)"
    assert (
        TaskInfo(cached={"run": "r1", "key": "k" * 20}).summary() == "cached: from run r1 (key kkkkkkkkkkkk)"
    )
    assert Info(error="bad").summary() == "bad" and Info().summary("last") == "last"
