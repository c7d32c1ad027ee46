"""Traversal with a fake runner: which steps run, in what scope, and what composites mean."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor.graph.kinds import KINDS, kind_of
from conveyor.graph.scope import Scope
from conveyor.graph.traverse import Traversal
from conveyor.runlog.records import Status
from conveyor.spec.models import NODE_TYPES
from support.fakes import FakeRunner, edited, shape


def fails(params: Any) -> Any:
    raise RuntimeError("no")


def test_every_node_type_has_a_kind() -> None:
    assert set(KINDS) == set(NODE_TYPES)


def test_chain_follows_next_then_on_failure() -> None:
    pipeline = shape("chain").pipeline
    ok_runner = FakeRunner({"tasks.a": lambda p: {"x": 1}, "tasks.b": lambda p: {"y": p["x"] + 1}})
    scope = Scope()
    assert Traversal(ok_runner).run_graph(pipeline.dag, [], scope) is True
    assert ok_runner.ran == [("a",), ("b",), ("c",)] and scope.own == {"x": 1, "y": 2}

    failing = FakeRunner({"tasks.b": fails})
    assert Traversal(failing).run_graph(pipeline.dag, [], Scope()) is False  # cleanup -> fail
    assert failing.ran == [("a",), ("b",), ("cleanup",)]


def test_on_failure_reaching_success_succeeds() -> None:
    def to_success(data: dict[str, Any]) -> None:
        data["dag"]["steps"]["cleanup"]["next"] = "success"

    pipeline = edited(shape("chain").pipeline, to_success)
    runner = FakeRunner({"tasks.b": fails})
    assert Traversal(runner).run_graph(pipeline.dag, [], Scope()) is True


def test_parallel_branches_get_own_scopes_and_merge_in_order() -> None:
    runner = FakeRunner(
        {"tasks.l": lambda p: {"v": "left", "left": 1}, "tasks.r": lambda p: {"v": "right", "right": 2}}
    )
    scope = Scope()
    assert Traversal(runner).run_graph(shape("parallel").pipeline.dag, [], scope)
    assert scope.own == {"v": "right", "left": 1, "right": 2}  # later branches win
    assert runner.final(("both",))[0] is Status.SUCCEEDED
    assert ("both", "left", "l") in runner.ran and runner.ran[-1] == ("after",)


def test_map_scopes_items_and_reduces_in_item_order() -> None:
    runner = FakeRunner({"tasks.square": lambda p: {"sq": p["item"] ** 2}})
    scope = Scope(None, {"items": [3, 1, 2]})
    assert Traversal(runner).run_graph(shape("map").pipeline.dag, [], scope)
    assert scope.get("sq") == [9, 1, 4]
    status, info = runner.final(("fan",))
    assert status is Status.SUCCEEDED and info["items"] == 3 and info["failed"] == 0
    assert runner.items_done == [(("fan", "0"), True), (("fan", "1"), True), (("fan", "2"), True)]
    assert "item" not in scope.own  # iterate_as stays inside each item


@pytest.mark.parametrize("policy", ["fail", "continue"])
def test_map_item_failure_policy(policy: str) -> None:
    def set_policy(data: dict[str, Any]) -> None:
        data["dag"]["steps"]["fan"]["on_item_failure"] = policy

    def square(params: Any) -> Any:
        if params["item"] == 2:
            raise ValueError("two")
        return {"sq": params["item"] ** 2}

    runner = FakeRunner({"tasks.square": square})
    scope = Scope(None, {"items": [1, 2, 3]})
    ok = Traversal(runner).run_graph(edited(shape("map").pipeline, set_policy).dag, [], scope)
    status, info = runner.final(("fan",))
    assert info["failed_items"] == [1] and info["failed"] == 1
    if policy == "fail":
        assert not ok and status is Status.FAILED and "sq" not in scope.own
    else:
        assert ok and scope.get("sq") == [1, 9]  # failed items are left out of the reduce


def test_map_reducer_and_its_failure() -> None:
    def with_reducer(data: dict[str, Any]) -> None:
        data["dag"]["steps"]["fan"]["reducer"] = "r.total"

    pipeline = edited(shape("map").pipeline, with_reducer)
    square = {"tasks.square": lambda p: {"sq": p["item"] ** 2}}
    runner = FakeRunner(square, {"r.total": sum})
    scope = Scope(None, {"items": [1, 2]})
    assert Traversal(runner).run_graph(pipeline.dag, [], scope) and scope.get("sq") == 5

    broken = FakeRunner(square, {"r.total": lambda values: 1 / 0})
    assert not Traversal(broken).run_graph(pipeline.dag, [], Scope(None, {"items": [1]}))
    assert broken.final(("fan",))[1]["error"] == "reducer r.total failed: ZeroDivisionError: division by zero"


def test_map_on_a_missing_or_non_list_parameter_fails_the_map() -> None:
    for params, message in (({}, "map needs parameter 'items', which is not set"),
                            ({"items": 3}, "map iterates on 'items', which must be a list; found int")):  # fmt: skip
        runner = FakeRunner()
        assert not Traversal(runner).run_graph(shape("map").pipeline.dag, [], Scope(None, params))
        assert runner.final(("fan",)) == (Status.FAILED, {"error": message})


@pytest.mark.parametrize(
    ("mode", "ran", "ok"),
    [
        ("fast", ("pick", "fast", "quick"), True),
        (True, ("pick", "true", "flag"), True),
        ("other", None, True),
    ],
)
def test_conditional_chooses_by_value_and_no_match_fails_the_node(mode: Any, ran: Any, ok: bool) -> None:
    runner = FakeRunner({"tasks.quick": lambda p: {"out": 1}, "tasks.flag": lambda p: {"out": 2}})
    scope = Scope(None, {"mode": mode})
    assert Traversal(runner).run_graph(shape("conditional").pipeline.dag, [], scope) is ok
    if ran is None:  # no branch matched: the node failed, its on_failure (a stub) took over
        status, info = runner.final(("pick",))
        assert status is Status.FAILED and "matches no branch" in info["error"]
        assert ("fallback",) in [e[0] for e in runner.events]
    else:
        assert ran in runner.ran and runner.final(("pick",))[1]["branch"] == ran[1]


def test_kind_of_dispatches_on_type() -> None:
    dag = shape("nested").pipeline.dag
    assert type(kind_of(dag.steps["fan"])).__name__ == "MapKind"
    assert type(kind_of(dag.steps["prep"])).__name__ == "TaskKind"
