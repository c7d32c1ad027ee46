"""The run page's data (issue 24): a failed run's summary of what failed with the head of
each log; a map item whole (its value, attempts, returns); parallel and conditional
branches expanded in place, side by side, the branch not taken dimmed; and the layered
layout itself (ranks, fewer crossings, long edges routed around nodes)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from conveyor.runlog.file import FileRunLogStore
from conveyor.runlog.records import EndEvent, NodeEvent, RunRecord, StartEvent, Status
from conveyor.step.context import path_slug
from conveyor.ui.layout import HEIGHT, WIDTH, lay_out
from conveyor.ui.runpage import RunPage
from conveyor.ui.shapes import DagEdge, DagNode
from conveyor.ui.views import RunView

PIPELINE = {
    "dag": {
        "start_at": "load",
        "steps": {
            "load": {"command": "m.load", "next": "fan", "on_failure": "fan"},
            "fan": {
                "type": "map", "iterate_on": "xs", "iterate_as": "x", "next": "both",
                "on_item_failure": "continue",
                "branch": {"start_at": "t", "steps": {"t": {"command": "m.t", "next": "success"}}},
            },
            "both": {
                "type": "parallel", "next": "pick",
                "branches": {
                    "a": {"start_at": "a1", "steps": {"a1": {"command": "m.a", "next": "a2"},
                                                      "a2": {"command": "m.a", "next": "success"}}},
                    "b": {"start_at": "b1", "steps": {"b1": {"command": "m.b", "next": "success"}}},
                },
            },
            "pick": {
                "type": "conditional", "parameter": "which", "next": "success",
                "branches": {
                    "yes": {"start_at": "y", "steps": {"y": {"command": "m.y", "next": "success"}}},
                    "no": {"start_at": "n", "steps": {"n": {"command": "m.n", "next": "success"}}},
                },
            },
        },
    }
}  # fmt: skip
LOG = "".join(f"line {i}: <b>not markup</b>\n" for i in range(30))


def failed_run(tmp_path: Path) -> RunView:
    store = FileRunLogStore(str(tmp_path / "runs"))
    t = time.time() - 100
    params = {"xs": [{"name": f"f{i}.csv"} for i in range(6)], "which": "yes"}
    run = RunRecord(run_id="r", pipeline_name="p", pipeline=PIPELINE, started_at=t, status=Status.FAILED,
                    ended_at=t + 50, initial_parameters=params)  # fmt: skip
    store.save_run(run, create=True)
    log = store.write_log("r", f"{path_slug(['load'])}/attempt-2.log", LOG)
    store.append(
        "r", [StartEvent(["load"], 1, t), EndEvent(["load"], 1, t + 1, Status.FAILED, error="first")]
    )
    store.append("r", [StartEvent(["load"], 2, t + 2),
                       EndEvent(["load"], 2, t + 3, Status.FAILED, error="OSError: disk full", log=log)])  # fmt: skip
    store.append("r", [NodeEvent(["fan"], "map", Status.RUNNING, t + 4, {"items": 6})])
    for i in range(6):
        path = ["fan", str(i), "t"]
        bad = i in (2, 4)
        if bad:
            store.write_log(
                "r", f"{path_slug(path)}/attempt-1.log", f"item {i} starts\nValueError: row {i}\n"
            )
        store.append("r", [StartEvent(path, 1, t + 5 + i),
                           EndEvent(path, 1, t + 6 + i, Status.FAILED if bad else Status.SUCCEEDED, started=t + 5 + i,
                                    error=f"ValueError: row {i}" if bad else None,
                                    returns={} if bad else {"rows": i * 10})])  # fmt: skip
    store.append("r", [NodeEvent(["fan"], "map", Status.FAILED, t + 20, {"items": 6, "failed": 2})])
    store.append("r", [NodeEvent(["both"], "parallel", Status.SUCCEEDED, t + 21),
                       NodeEvent(["pick"], "conditional", Status.SUCCEEDED, t + 22, {"branch": "yes"}),
                       StartEvent(["pick", "yes", "y"], 1, t + 22),
                       EndEvent(["pick", "yes", "y"], 1, t + 23, Status.SUCCEEDED)])  # fmt: skip
    return RunView(store, "r")


def test_a_failed_run_says_what_failed_with_the_head_of_each_log(tmp_path: Path) -> None:
    view = failed_run(tmp_path)
    failures = view.header()["failures"]
    assert [f["path"] for f in failures] == [
        "load",
        "fan/2/t",
        "fan/4/t",
    ]  # not the map: its items are listed
    load = failures[0]
    assert (load["error"], load["attempt"], load["item"]) == ("OSError: disk full", 2, None)
    assert load["log"] is not None
    assert load["log"].splitlines()[:2] == ["line 0: <b>not markup</b>", "line 1: <b>not markup</b>"]
    assert load["log"].endswith("…") and len(load["log"].splitlines()) == 13  # 12 lines, then "…"
    item = failures[2]
    assert (item["error"], item["attempt"], item["item"]) == ("ValueError: row 4", 1, "fan/4")
    assert item["log"] == "item 4 starts\nValueError: row 4"


def test_a_map_item_page_has_its_value_attempts_and_returns(tmp_path: Path) -> None:
    view = failed_run(tmp_path)
    assert view.pipeline is not None
    inner = view.pipeline.dag.steps["fan"].inner("0")
    dag = view.dag(inner, ("fan", "4"), ("fan", "4"))
    assert [(n["name"], n["status"]) for n in dag["nodes"] if n["ends"] is None] == [("t", "failed")]
    item = dag["item"]
    assert (item["parameter"], item["value"], item["value_known"]) == ("x", {"name": "f4.csv"}, True)
    assert [s["path"] for s in item["steps"]] == [["fan", "4", "t"]]
    assert item["steps"][0]["attempts"][0]["error"] == "ValueError: row 4"
    good = view.dag(inner, ("fan", "3"), ("fan", "3"))["item"]
    assert good["steps"][0]["attempts"][0]["returns"] == {"rows": 30}
    assert "item" not in view.dag(inner, ("fan", "*"), ("fan", "*"))  # all items: no one item


def test_branches_are_expanded_side_by_side_and_the_branch_not_taken_is_dimmed(tmp_path: Path) -> None:
    view = failed_run(tmp_path)
    assert view.pipeline is not None
    dag = view.dag(view.pipeline.dag, (), ())
    nodes = {n["name"]: n for n in dag["nodes"]}
    a1, b1 = nodes["both/a/a1"], nodes["both/b/b1"]
    assert a1["layer"] == b1["layer"] == nodes["both"]["layer"] + 1
    assert abs(a1["x"] - b1["x"]) >= WIDTH  # side by side, not overlapping
    join = next(n for n in dag["nodes"] if n.get("join") and n.get("group") == "both")
    assert join["layer"] == nodes["both/a/a2"]["layer"] + 1  # after the longest branch
    assert {"from": join["name"], "to": "pick", "kind": "next"}.items() <= next(
        e for e in dag["edges"] if e["from"] == join["name"]
    ).items()
    assert nodes["pick/yes/y"]["status"] == "succeeded" and not nodes["pick/yes/y"]["dim"]
    assert nodes["pick/no/n"]["dim"] and nodes["pick/no/n"]["status"] == "pending"
    assert nodes["pick/no/n"]["path"] == "pick/no/n"  # opens the branch's level


def test_composites_are_toggled_in_place_the_map_counted_over_its_items(tmp_path: Path) -> None:
    view = failed_run(tmp_path)
    assert view.pipeline is not None
    top = view.pipeline.dag
    plain = {n["name"]: n for n in view.dag(top, (), ())["nodes"]}
    # unasked: the parallel and conditional open, the map stays one stacked node
    assert (plain["both"]["expandable"], plain["both"]["expanded"]) == (True, True)
    assert (plain["fan"]["expandable"], plain["fan"]["expanded"]) == (True, False)
    assert "fan/*/t" not in plain and "both/a/a1" in plain
    assert "expandable" not in plain["load"]
    toggled = view.dag(top, (), (), expand={"fan"}, fold={"both"})
    nodes = {n["name"]: n for n in toggled["nodes"]}
    assert "both/a/a1" not in nodes and not nodes["both"]["expanded"]
    inner = nodes["fan/*/t"]
    assert nodes["fan"]["expanded"] and inner["branch"] == "each item"
    assert inner["path"] == "fan/*/t" and inner["layer"] == nodes["fan"]["layer"] + 1
    assert inner["counts"] == {"succeeded": 4, "failed": 2}  # items 2 and 4 failed
    after = {e["from"] for e in toggled["edges"] if e["to"] == "both"}
    assert after == {"fan\u2009\u25c6"}  # what follows the map leads from its join


def _node(name: str) -> DagNode:
    return {"name": name, "type": "task", "path": name, "status": "pending"}


def test_layout_reduces_crossings_and_routes_long_edges_around_nodes() -> None:
    names = ["s", "a", "b", "c", "d", "e"]
    edges: list[DagEdge] = [
        {"from": "s", "to": "a", "kind": "next"}, {"from": "s", "to": "b", "kind": "next"},
        {"from": "a", "to": "d", "kind": "next"}, {"from": "b", "to": "c", "kind": "next"},
        {"from": "c", "to": "e", "kind": "next"}, {"from": "s", "to": "e", "kind": "on_failure"},
    ]  # fmt: skip
    dag = lay_out("s", [_node(n) for n in names], edges)
    at = {n["name"]: n for n in dag["nodes"]}
    assert [at[n]["layer"] for n in names] == [0, 1, 1, 2, 2, 3]
    # declared order (c before d) would cross a->d and b->c: the layout swaps one side
    assert (at["a"]["x"] < at["b"]["x"]) == (at["d"]["x"] < at["c"]["x"])
    long = next(e for e in dag["edges"] if e["from"] == "s" and e["to"] == "e")
    assert len(long["points"]) == 2 + 2  # through a virtual node on ranks 1 and 2
    for x, y in long["points"][1:-1]:  # never through a box
        for n in dag["nodes"]:
            assert not (n["x"] <= x <= n["x"] + WIDTH and n["y"] <= y <= n["y"] + HEIGHT), (x, y, n["name"])
    assert dag["width"] >= max(n["x"] for n in dag["nodes"]) + WIDTH


def test_run_page_reads_are_typed_apart_from_the_fold() -> None:
    assert issubclass(RunView, RunPage) and "apply" not in vars(RunPage)


def test_expanding_stops_at_a_total_so_a_page_cannot_ask_for_a_huge_graph(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each composite is bounded, but a page could name hundreds (hostile review: 60 parallels
    # of 400 steps, 8 MB and seconds under the view's lock): past the total, they stay folded.
    from conveyor.ui import runpage

    view = failed_run(tmp_path)
    assert view.pipeline is not None
    top = view.pipeline.dag
    monkeypatch.setattr(runpage, "EXPAND_TOTAL", 2)  # room for no composite's inside
    nodes = {n["name"]: n for n in view.dag(top, (), (), expand={"fan", "both", "pick"})["nodes"]}
    assert not nodes["fan"]["expanded"] and not nodes["both"]["expanded"]
    assert nodes["fan"]["expandable"] and "fan/*/t" not in nodes and "both/a/a1" not in nodes
