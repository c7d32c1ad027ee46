"""A kind's info record reads a store's JSON field by field: a value of the wrong type is
dropped (the field stays unset), what the record does not know is kept in ``extra``, and a
map knows by its own record whether it planned partitions."""

from __future__ import annotations

from conveyor.graph.kinds.loop import LoopInfo
from conveyor.graph.kinds.map import MapInfo
from conveyor.graph.kinds.task import TaskInfo


def test_values_of_the_wrong_type_are_dropped_and_unknown_keys_kept() -> None:
    info = MapInfo.from_json(
        {"items": "5", "failed": True, "failed_items": [1, "x", 3], "returns": [1], "source": "s3://b"}
    )
    assert (info.items, info.failed, info.returns) == (None, None, None)
    assert info.failed_items == [1, 3]
    assert info.extra == {"source": "s3://b"}
    assert info.to_json() == {"failed_items": [1, 3], "source": "s3://b"}


def test_each_field_is_read_by_its_own_annotation() -> None:
    task = TaskInfo.from_json({"cached": {"run": "r1", "key": "k"}, "mocked": 1, "patched": "exit 1"})
    assert task.cached == {"run": "r1", "key": "k"} and task.mocked is None and task.patched == "exit 1"
    loop = LoopInfo.from_json({"iterations": 2, "ended": 3})
    assert (loop.iterations, loop.ended) == (2, None)
    assert LoopInfo.from_json(None) == LoopInfo()


def test_a_map_knows_whether_it_planned_partitions() -> None:
    assert not MapInfo.from_json({"items": 3}).planned
    assert not MapInfo.from_json(None).planned
    planned = MapInfo.from_json({"items": 2, "skipped": 1, "manifest": "partitions/each", "partitions": 2})
    assert planned.planned and planned.skipped == 1
    assert planned.extra == {"manifest": "partitions/each", "partitions": 2}
