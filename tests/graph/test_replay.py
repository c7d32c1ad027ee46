"""Replay reads outcomes off recorded step records: scopes at any path, entering branches
and items, and what is not reachable yet."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor.graph.kinds.base import NotReached
from conveyor.graph.replay import Replay, node_at
from conveyor.runlog.records import Attempt, NodeEvent, Status, StepRecord, fold
from conveyor.spec.models import TaskNode
from support.fakes import shape


def done(path: list[str], returns: dict[str, Any], status: Status = Status.SUCCEEDED) -> StepRecord:
    return StepRecord(path, "task", status, [Attempt(1, status, returns=returns)])


def restore(node: TaskNode, attempt: Attempt) -> dict[str, Any]:
    return {name: attempt.returns.get(name) for name in node.returned()}


def replay(*records: StepRecord, events: list[NodeEvent] = ()) -> Replay:  # type: ignore[assignment]
    steps = {tuple(r.path): r for r in records}
    steps.update(fold(events))
    return Replay(steps, restore)


def test_scope_inside_a_map_item_inside_a_conditional_branch() -> None:
    pipeline = shape("nested").pipeline
    recorded = replay(done(["prep"], {"items": ["b", "a"]}))
    scope = recorded.scope_at(pipeline, ["fan", "1", "route", "a", "do_a"], {})
    assert scope.get("item") == "a" and scope.get("items") == ["b", "a"]


def test_entering_the_branch_not_chosen_is_refused() -> None:
    pipeline = shape("nested").pipeline
    recorded = replay(done(["prep"], {"items": ["b"]}))
    with pytest.raises(NotReached, match="chose another branch"):
        recorded.scope_at(pipeline, ["fan", "0", "route", "a", "do_a"], {})


def test_unfinished_steps_and_missing_items_are_not_reached() -> None:
    pipeline = shape("nested").pipeline
    with pytest.raises(NotReached, match="'prep' has not finished"):
        replay().scope_at(pipeline, ["fan", "0", "route", "a", "do_a"], {})
    recorded = replay(done(["prep"], {"items": ["a"]}))
    with pytest.raises(NotReached, match="has 1 items; there is no item 4"):
        recorded.scope_at(pipeline, ["fan", "4", "route", "a", "do_a"], {})


def test_a_failed_step_leads_to_its_on_failure_path() -> None:
    pipeline = shape("chain").pipeline
    recorded = replay(done(["a"], {"x": 1}), done(["b"], {}, Status.FAILED))
    assert recorded.scope_at(pipeline, ["cleanup"], {}).get("x") == 1
    with pytest.raises(NotReached, match="'cleanup' has not finished, so 'c' cannot run yet"):
        recorded.scope_at(pipeline, ["c"], {})


def test_map_outcome_restores_its_reduced_returns() -> None:
    pipeline = shape("map").pipeline
    events = [NodeEvent(["fan"], "map", Status.SUCCEEDED, 1.0, {"items": 2, "returns": {"sq": [1, 4]}})]
    scope = replay(events=events).scope_at(pipeline, ["total"], {"items": [1, 2]})
    assert scope.get("sq") == [1, 4]


def test_parallel_replays_both_branches() -> None:
    pipeline = shape("parallel").pipeline
    recorded = replay(
        done(["both", "left", "l"], {"v": 1, "left": 1}), done(["both", "right", "r"], {"v": 2, "right": 2})
    )
    scope = recorded.scope_at(pipeline, ["after"], {})
    assert (scope.get("v"), scope.get("left"), scope.get("right")) == (2, 1, 2)


def test_node_at_names_steps_branches_and_implicit_terminals() -> None:
    pipeline = shape("nested").pipeline
    assert node_at(pipeline, ["fan", "3", "route", "b", "do_b"]).type == "task"  # type: ignore[attr-defined]
    assert node_at(pipeline, ["fan", "3", "route", "b", "fail"]).ends is False
    with pytest.raises(NotReached, match="not an item index"):
        node_at(pipeline, ["fan", "x", "route"])
    with pytest.raises(NotReached, match="names a branch"):
        node_at(pipeline, ["fan", "0"])


@pytest.mark.parametrize("key", ["²", "١", "٣"])
def test_an_item_index_is_ascii_digits_only(key: str) -> None:
    # str.isdigit accepts '²' (int() then raises) and Arabic-Indic digits (int() reads them
    # as an index: '١' would have replayed item 1 under another name)
    recorded = replay(done(["prep"], {"items": ["a", "b"]}))
    with pytest.raises(NotReached, match="not an item index"):
        recorded.scope_at(shape("nested").pipeline, ["fan", key, "route", "a", "do_a"], {})
