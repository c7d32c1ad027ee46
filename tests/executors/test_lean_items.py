"""Map items on the engine's lean path record exactly what the general path records.

The lean path (``conveyor.executors.leanitems``) is an optimisation only: each test here
runs a map through it and, where it says so, through the general path (``lean_task``
patched to refuse every map), and compares what the run log holds, item by item.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conveyor.executors import engine as engine_module
from conveyor.executors.leanitems import LeanItems, lean_task
from conveyor.jsontext import compact, flat
from conveyor.runlog.codec import encode_events
from conveyor.runlog.itemattempt import ItemAttempt
from conveyor.runlog.records import Status
from conveyor.spec.load import load_pipeline
from support.runs import file_config, run_yaml, runlog, step

MAP = """
dag:
  start_at: fan
  steps:
    fan:
      type: map
      iterate_on: xs
      iterate_as: x
      branch:
        start_at: item
        steps:
          item: {command: leantasks.COMMAND, returns: RETURNS, next: success}
      next: success
"""


def _pipeline(command: str, returns: str = "[y]", policy: str = "fail") -> str:
    text = MAP.replace("COMMAND", command).replace("RETURNS", returns)
    return text.replace("      next: success\n", f"      on_item_failure: {policy}\n      next: success\n", 1)


def _items(root: Path, run_id: str, count: int) -> list[dict[str, Any]]:
    """What the run log says of each item: everything but times, logs read as text."""
    log = runlog(root, run_id)
    out = []
    for index in range(count):
        record = step(log, "fan", str(index), "item")
        (attempt,) = record.attempts
        out.append(
            {
                "status": record.status,
                "attempt": attempt.attempt,
                "attempt_status": attempt.status,
                "error": attempt.error,
                "returns": attempt.returns,
                "metrics": attempt.metrics,
                "log": Path(attempt.log).read_text() if attempt.log else None,
                "ordered": attempt.start <= attempt.end,
            }
        )
    return out


def _lean_runs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the items the lean path ran."""
    ran: list[int] = []
    original = LeanItems.run

    def counted(self: LeanItems, index: int) -> bool:
        ran.append(index)
        return original(self, index)

    monkeypatch.setattr(LeanItems, "run", counted)
    return ran


@pytest.mark.parametrize(
    ("command", "returns", "params"),
    [
        ("work", "[y, {name: half, kind: metric}]", {"xs": list(range(6)), "bad": 3}),
        ("quiet", "[y]", {"xs": list(range(5))}),
        ("not_json", "[y]", {"xs": [1, 2]}),
        ("missing", "[y]", {"xs": [1, 2]}),
        ("work", "[y]", {"xs": [1, 2], "bad": -1}),  # two returned values, one declared
        ("mutate", "[y]", {"xs": [1, 2, 3], "lst": [0]}),  # a cast parameter is each call's own
        ("no_signature", "[y]", {"xs": [1, 2]}),  # its signature cannot be read: each item fails
        ("picky", "[y]", {"xs": [{"a": 0}, {"a": 1}, {"a": 2}]}),  # a validator raising TypeError
        ("unsaid", "[y]", {"xs": [0, 1, 2]}),  # a returned model whose dump raises
        ("loud", "[y]", {"xs": [0, 1, 2]}),  # a model's serializer raising a RuntimeError
        ("sly", "[y]", {"xs": [0, 1, 2]}),  # a JSON check raising a RuntimeError (general crashed)
        ("quits", "[y]", {"xs": [0, 1, 2]}),  # ... raising SystemExit (the run ended silently)
        ("shifty", "[y]", {"xs": [0, 1]}),  # a return that encodes once only (a crash)
    ],
)
def test_the_lean_path_records_what_the_general_path_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str, returns: str, params: dict[str, Any]
) -> None:
    text = _pipeline(command, returns, policy="continue")
    count = len(params["xs"])
    ran = _lean_runs(monkeypatch)
    (tmp_path / "lean").mkdir()
    lean = run_yaml(tmp_path / "lean", text, params)
    assert sorted(ran) == list(range(count))  # it did take the lean path
    ran.clear()
    monkeypatch.setattr(engine_module, "lean_task", lambda node: None)
    (tmp_path / "general").mkdir()
    general = run_yaml(tmp_path / "general", text, params)
    assert ran == []
    assert lean.status == general.status
    assert _items(tmp_path / "lean", lean.run_id, count) == _items(
        tmp_path / "general", general.run_id, count
    )
    kept = runlog(tmp_path / "lean", lean.run_id).run.final_parameters
    assert kept == runlog(tmp_path / "general", general.run_id).run.final_parameters


def test_a_failing_item_says_why_and_keeps_its_traceback(tmp_path: Path) -> None:
    result = run_yaml(
        tmp_path, _pipeline("work", "[y, {name: half, kind: metric}]"), {"xs": [0, 1], "bad": 1}
    )
    assert result.status == "failed"
    items = _items(tmp_path, result.run_id, 2)
    assert (
        items[0]["status"] == "succeeded"
        and items[0]["returns"] == {"y": 0}
        and items[0]["metrics"] == {"half": 0.0}
    )
    assert items[0]["log"] == "item 0 says hello\nitem 0 warns\n"
    assert items[1]["status"] == "failed" and items[1]["error"] == "ValueError: item 1 is bad"
    assert "Traceback" in items[1]["log"] and "leantasks.py" in items[1]["log"]


def test_the_item_lines_are_the_events_lines(tmp_path: Path) -> None:
    """The file holds a start and an end line per item, in the shapes every store writes."""
    result = run_yaml(tmp_path, _pipeline("quiet"), {"xs": [5, 6]})
    assert result.ok
    lines = [
        json.loads(x) for x in (tmp_path / "runs" / result.run_id / "events.jsonl").read_text().splitlines()
    ]
    item = [x for x in lines if x.get("path", [None])[:1] == ["fan"] and len(x["path"]) == 3]
    assert [x["e"] for x in item] == ["start", "end", "start", "end"]
    assert item[1] == {
        "e": "end",
        "path": ["fan", "0", "item"],
        "attempt": 1,
        "t": item[1]["t"],
        "started": item[0]["t"],
        "status": "succeeded",
        "returns": {"y": 6},
    }
    assert item[0] == {
        "e": "start",
        "path": ["fan", "0", "item"],
        "type": "task",
        "attempt": 1,
        "t": item[0]["t"],
    }


def test_a_long_item_is_seen_running_and_its_start_written_once(tmp_path: Path) -> None:
    """The engine's ticker writes the start of an item still running; its end comes after."""
    seen: list[Status] = []
    path = tmp_path / "pipeline.yaml"
    path.write_text(_pipeline("slow_first"))
    config = file_config(tmp_path)
    from conveyor.executors.run import execute

    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            runs = list((tmp_path / "runs").glob("*/events.jsonl"))
            if runs and '"fan","0","item"],"type"' in runs[0].read_text():
                log = runlog(tmp_path, runs[0].parent.name)
                record = log.steps.get(("fan", "0", "item"))
                if record is not None:
                    seen.append(record.status)
                    return
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        result = execute(load_pipeline(path), config, {"xs": [0, 1], "hold": 1.5})
    finally:
        done.set()
        watcher.join()
    assert result.ok
    assert seen == [Status.RUNNING]
    text = (tmp_path / "runs" / result.run_id / "events.jsonl").read_text()
    mine = [json.loads(x)["e"] for x in text.splitlines() if '"fan","0","item"]' in x]
    assert mine == ["start", "end"]


def test_maps_the_lean_path_leaves_to_the_general_one() -> None:
    def task(extra: str) -> Any:
        text = "dag:\n  start_at: fan\n  steps:\n    fan:\n      type: map\n      iterate_on: xs\n      iterate_as: x\n"
        text += "      branch:\n        start_at: t\n        steps:\n"
        text += f"          t: {{command: m.f, next: success{extra}}}\n      next: success\n"
        return text

    cases = {
        "": True,
        ", retry: {attempts: 2}": False,
        ", timeout_seconds: 5": False,
        ", secrets: [TOKEN]": False,
        ", catalog: {put: [out.txt]}": False,
        ", returns: [{name: o, kind: object}]": False,
        ", command_type: shell": False,
        ", on_failure: success": False,
    }
    import tempfile

    for extra, lean in cases.items():
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "p.yaml"
            path.write_text(task(extra))
            node = load_pipeline(path).pipeline.dag.steps["fan"]
            assert (lean_task(node) is not None) is lean, extra  # type: ignore[arg-type]


_SCALAR = st.one_of(st.integers(), st.text(), st.none(), st.booleans(), st.floats(allow_nan=False))
_VALUE = st.recursive(_SCALAR, lambda inner: st.lists(inner, max_size=3), max_leaves=5)
_OBJECT = st.dictionaries(st.text(max_size=5), _VALUE, max_size=3)


@settings(max_examples=300, deadline=None)
@given(
    returns=_OBJECT,
    metrics=_OBJECT,
    error=st.one_of(st.none(), st.text()),
    log=st.one_of(st.none(), st.text()),
    opened=st.booleans(),
    attempt=st.integers(min_value=1, max_value=10**12),
    started=st.one_of(st.floats(allow_nan=False), st.integers()),
    ended=st.one_of(st.floats(allow_nan=True), st.integers()),
    failed=st.booleans(),
    info=st.one_of(st.none(), st.just({}), st.just({"cached": {"key": "k1", "run": "r\u00e9"}})),
)
def test_an_item_attempt_is_written_as_its_events_are(
    returns: dict[str, Any],
    metrics: dict[str, Any],
    error: str | None,
    log: str | None,
    opened: bool,
    attempt: int,
    started: float,
    ended: float,
    failed: bool,
    info: dict[str, Any] | None,
) -> None:
    status = Status.FAILED if failed else Status.SUCCEEDED
    path = ["fan", "7", "item"]
    record = ItemAttempt(path, attempt, started, ended, status, returns, metrics, error, log, opened)
    assert encode_events([record]) == encode_events(record.events())
    texted = ItemAttempt(
        path, attempt, started, ended, status, returns, metrics, error, log, opened, compact(path)
    )
    assert encode_events([texted, record]) == encode_events([*record.events(), *record.events()])
    assert flat(returns) == compact(returns)


def test_cache_hits_and_fills_on_the_lean_path_are_the_general_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Entries one path fills, the other hits (the same keys), recorded the same way."""
    text = _pipeline("work", "[y, {name: half, kind: metric}]").replace("dag:\n", "dag:\n  cache: true\n", 1)
    params = {"xs": [0, 1, 2], "bad": 2, "prefix": "cached"}
    ran = _lean_runs(monkeypatch)
    first = run_yaml(tmp_path, text, params)  # lean: fills 0 and 1, item 2 fails
    assert first.status == "failed" and sorted(ran) == [0, 1, 2]
    log = runlog(tmp_path, first.run_id)
    assert all(step(log, "fan", str(i), "item").info == {} for i in range(3))

    monkeypatch.setattr(engine_module, "lean_task", lambda node: None)
    ran.clear()
    second = run_yaml(tmp_path, text, params)  # general: hits what the lean path filled
    assert ran == []
    general = runlog(tmp_path, second.run_id)
    monkeypatch.undo()
    ran = _lean_runs(monkeypatch)
    third = run_yaml(tmp_path, text, params)  # lean again: hits the same entries
    assert sorted(ran) == [0, 1, 2]
    lean = runlog(tmp_path, third.run_id)
    for index in (0, 1):
        was, now = (step(x, "fan", str(index), "item") for x in (general, lean))
        assert was.info == now.info == {"cached": {"key": was.info["cached"]["key"], "run": first.run_id}}
        was, now = was.attempts[0], now.attempts[0]
        assert was.returns == now.returns == {"y": index * 2} and was.metrics == now.metrics == {
            "half": index / 2
        }
        assert was.log is None and now.log is None  # a hit has no output
    failed = step(lean, "fan", "2", "item")
    assert failed.info == {} and failed.attempts[0].error == "ValueError: item 2 is bad"  # not kept


def test_a_maps_end_is_written_after_its_cache_hits(tmp_path: Path) -> None:
    """Hits are written in groups under batched durability: never after the map's end."""
    text = _pipeline("quiet").replace("dag:\n", "dag:\n  cache: true\n", 1)
    params = {"xs": list(range(200))}
    assert run_yaml(tmp_path, text, params).ok
    again = run_yaml(tmp_path, text, params)
    assert again.ok
    lines = [
        json.loads(x) for x in (tmp_path / "runs" / again.run_id / "events.jsonl").read_text().splitlines()
    ]
    ends = [
        i
        for i, x in enumerate(lines)
        if x.get("e") == "node" and x["path"] == ["fan"] and x["status"] == "succeeded"
    ]
    items = [i for i, x in enumerate(lines) if len(x.get("path", ())) == 3]
    assert len(items) == 400 and ends and max(items) < ends[0]
    assert all(x.get("info", {}).get("cached") for x in lines if x.get("e") == "end" and len(x["path"]) == 3)


def test_a_map_inside_a_parallel_takes_the_lean_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nested composites cap tasks by the executor's slots; the lean items take one each."""
    branch = """
          start_at: fan
          steps:
            fan:
              type: map
              iterate_on: xs
              iterate_as: x
              branch:
                start_at: item
                steps:
                  item: {command: leantasks.quiet, returns: [y], next: success}
              next: success
"""
    text = "dag:\n  start_at: both\n  steps:\n    both:\n      type: parallel\n      branches:\n"
    text += f"        a:{branch}        b:{branch}      next: success\n"
    ran = _lean_runs(monkeypatch)
    result = run_yaml(tmp_path, text, {"xs": [1, 2, 3]})
    assert result.ok, text
    assert sorted(ran) == [0, 0, 1, 1, 2, 2]
    log = runlog(tmp_path, result.run_id)
    assert step(log, "both", "a", "fan", "2", "item").attempts[0].returns == {"y": 4}
