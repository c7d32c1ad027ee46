"""Comparing two runs (issue 24 point 4) and the runs listing's date range and tag (point 5),
over real runs recorded in a file run log store: what the compare endpoint flags as
different, its refusals, its redaction, and the listing's since/until/tag filters."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from conveyor.executors.run import execute
from conveyor.runlog.base import RunLogStore
from conveyor.server.redact import without_credentials
from conveyor.spec.load import load_pipeline
from conveyor.ui.compare import diff_params, durations_differ
from conveyor.ui.routes import UIState, ui_router
from conveyor.ui.source import LocalSource, Viewer
from conveyor.ui.when import BadRange, date_range, instant
from support.runs import file_config

PIPELINE = """
dag:
  start_at: score
  steps:
    score: {command: ctasks.scored, returns: [{name: quality, kind: metric}], next: fan}
    fan:
      type: map
      iterate_on: xs
      iterate_as: x
      on_item_failure: continue
      branch: {start_at: item, steps: {item: {command: ctasks.fail_if, next: success}}}
      next: check
    check: {command: ctasks.fail_if, returns: [y], next: success}
"""
#: When each run started (set in its record): a, b and same on 1 Dec 2026, old a year before.
DAY = 1_796_083_200.0  # 2026-12-01T00:00:00Z


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> RunLogStore:
    """Runs of one pipeline: ``a`` (x=2, succeeds), ``b`` (x=7 is bad: check fails; a new
    parameter holding a URL's password), ``same`` (a's parameters again) and ``old``."""
    root = tmp_path_factory.mktemp("compare")
    (root / "pipeline.yaml").write_text(PIPELINE)
    config = file_config(root)
    pipeline = load_pipeline(root / "pipeline.yaml")
    given: dict[str, dict[str, Any]] = {
        "a": {"x": 2, "bad": 7, "xs": [1, 2]},
        "b": {"x": 7, "bad": 7, "xs": [1, 7], "db": "postgresql://app:hunter2pw@db/x"},
        "same": {"x": 2, "bad": 7, "xs": [1, 2]},
        "old": {"x": 3, "bad": 7, "xs": []},
    }
    tags = {"a": "nightly", "b": "nightly", "same": "manual"}
    for run_id, params in given.items():
        execute(pipeline, config, params, run_id=run_id, tag=tags.get(run_id))
    from conveyor.executors.run import open_store

    opened = open_store(config)
    starts = {"a": DAY + 3600, "b": DAY + 7200, "same": DAY + 10800, "old": DAY - 365 * 86400}
    for run_id, start in starts.items():
        record = opened.load_record(run_id)
        shift = start - (record.started_at or start)
        record.started_at = start
        record.ended_at = record.ended_at + shift if record.ended_at else None
        opened.save_run(record)
    return opened


def client(store: RunLogStore, redact: Any = None) -> TestClient:
    app = FastAPI()
    app.state.ui = UIState(LocalSource(store), lambda request: Viewer(), "local", redact or (lambda v: v))
    app.include_router(ui_router())
    return TestClient(app)


def step(comparison: dict[str, Any], path: str) -> dict[str, Any]:
    found: dict[str, Any] = next(s for s in comparison["steps"] if s["path"] == path)
    return found


def test_two_runs_compare_parameters_and_steps(store: RunLogStore) -> None:
    got = client(store).get("/ui/api/compare/a/b")
    assert got.status_code == 200, got.text
    c = got.json()
    assert (c["a"]["run_id"], c["b"]["run_id"]) == ("a", "b")
    assert (c["a"]["status"], c["b"]["status"]) == ("succeeded", "failed")
    assert c["same_pipeline"] is True
    params = c["initial_parameters"]
    assert (params["changed"], params["added"], params["removed"]) == (["x", "xs"], ["db"], [])
    rows = {r["name"]: r for r in params["rows"]}
    assert rows["x"]["a"] == 2 and rows["x"]["b"] == 7 and rows["bad"]["change"] == "same"
    assert rows["db"]["has_a"] is False and rows["db"]["has_b"] is True

    score = step(c, "score")  # both succeeded, the metric differs (x * 1.5)
    assert score["a"]["status"] == score["b"]["status"] == "succeeded"
    assert score["a"]["metrics"] == {"quality": 3.0} and score["b"]["metrics"] == {"quality": 10.5}
    assert score["differs"]["metrics"] and score["changed_metrics"] == ["quality"]
    assert not score["differs"]["status"] and not score["differs"]["presence"]

    check = step(c, "check")  # succeeded in a, failed in b, without a return there
    assert (check["a"]["status"], check["b"]["status"]) == ("succeeded", "failed")
    assert check["differs"]["status"] and check["differs"]["returns"]
    assert check["a"]["returns"] == {"y": 2} and check["changed_returns"] == ["y"]
    fan = step(c, "fan")  # a map is one row, its items counted; no item's step is a row
    assert fan["a"]["items"] == {"succeeded": 2} and fan["b"]["items"] == {"succeeded": 1, "failed": 1}
    assert fan["differs"]["items"] and not fan["differs"]["status"]
    assert [s["path"] for s in c["steps"]] == ["score", "fan", "check"]
    assert c["steps_differing"] == 3


def test_runs_with_the_same_inputs_differ_in_nothing(store: RunLogStore) -> None:
    c = client(store).get("/ui/api/compare/a/same").json()
    assert c["steps_differing"] == 0, c["steps"]
    assert all(not any(s["differs"].values()) for s in c["steps"])
    assert c["initial_parameters"]["changed"] == [] and c["initial_parameters"]["added"] == []


def test_compare_refuses_one_run_twice_and_unknown_runs(store: RunLogStore) -> None:
    ui = client(store)
    twice = ui.get("/ui/api/compare/a/a")
    assert twice.status_code == 422 and "choose two runs" in twice.json()["detail"]
    missing = ui.get("/ui/api/compare/a/nothing")
    assert missing.status_code == 404 and "no run 'nothing'" in missing.json()["detail"]


def test_compare_hides_what_the_ui_redacts(store: RunLogStore) -> None:
    plain = client(store).get("/ui/api/compare/a/b").text
    assert "hunter2pw" in plain  # recorded as given: the local UI hides nothing
    hidden = client(store, without_credentials).get("/ui/api/compare/a/b")
    assert hidden.status_code == 200 and "hunter2pw" not in hidden.text
    assert "app:***@db" in hidden.text


def test_the_compare_page_is_served() -> None:
    from conveyor.ui.app import ASSETS, _shell

    assert "compare.js" in ASSETS and "/ui/static/compare.js" in _shell()


def test_what_differs_by_itself() -> None:
    assert not durations_differ(1.0, 1.3)  # under the floor: timings move
    assert not durations_differ(100.0, 110.0)  # under 20% of the longer
    assert durations_differ(10.0, 20.0) and durations_differ(None, 3.0)
    assert not durations_differ(None, None)
    nan = float("nan")
    diff = diff_params({"m": nan, "d": {"a": 1, "b": 2}, "gone": 1}, {"m": nan, "d": {"b": 2, "a": 1}})
    assert diff["changed"] == [] and diff["removed"] == ["gone"]


def listed(ui: TestClient, **query: Any) -> list[str]:
    answer = ui.get("/ui/api/runs", params=query)
    assert answer.status_code == 200, answer.text
    return [r["id"] for r in answer.json()["runs"]]


def test_the_runs_listing_filters_by_date_range(store: RunLogStore) -> None:
    ui = client(store)
    assert listed(ui) == ["same", "b", "a", "old"]
    assert listed(ui, since=DAY) == ["same", "b", "a"]
    assert listed(ui, since=DAY, until=DAY + 7200) == ["a"]  # until is exclusive
    assert listed(ui, since="2026-12-01T01:30:00Z", until="2026-12-02") == ["same", "b"]
    assert listed(ui, until="2026-01-01") == ["old"]
    assert ui.get("/ui/api/runs", params={"since": DAY}).json()["total"] == 3


def test_the_runs_listing_filters_by_tag_and_lists_tags(store: RunLogStore) -> None:
    ui = client(store)
    assert listed(ui, tag="nightly") == ["b", "a"]
    assert ui.get("/ui/api/runs").json()["tags"] == ["manual", "nightly"]
    assert listed(ui, tag="nightly", since=DAY + 5000) == ["b"]


@pytest.mark.parametrize(
    ("query", "said"),
    [
        ({"since": "yesterday"}, "since: expected epoch seconds"),
        ({"until": "2026-13-01"}, "until: expected epoch seconds"),
        ({"since": "nan"}, "finite"),
        ({"since": "2026-12-02", "until": "2026-12-01"}, "until: expected a time after since"),
    ],
)
def test_a_bad_range_is_refused_saying_why(store: RunLogStore, query: dict[str, str], said: str) -> None:
    answer = client(store).get("/ui/api/runs", params=query)
    assert answer.status_code == 422 and said in answer.json()["detail"], answer.text
    assert "found" in answer.json()["detail"]


def test_times_are_read_as_seconds_or_iso() -> None:
    assert instant("", "since") is None
    assert instant(" 12.5 ", "since") == 12.5
    assert instant("2026-12-01", "since") == DAY  # no zone: UTC
    assert instant("2026-12-01T01:00:00+01:00", "since") == DAY
    with pytest.raises(BadRange) as bad:
        instant("soon", "until")
    assert bad.value.where == "until" and bad.value.found == "soon"
    span = date_range("2026-12-01", "")
    assert span.holds(DAY) and not span.holds(DAY - 1) and not span.holds(None)
    assert date_range("", "").holds(None)
