"""Resume: succeeded steps and map items are not run again; changed pipelines are refused;
a run killed with SIGKILL still reads, says it was interrupted, and finishes on retry."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.executors.run import RunRefused
from support import TASKS, run_cli
from support.runs import retry, run_yaml, runlog, step, steps_of, variant

CHAIN = """
dag:
  start_at: one
  steps:
    one: {command: ctasks.record, returns: [first], next: two}
    two: {command: ctasks.flaky, returns: [second], next: three}
    three: {command: ctasks.record_item, returns: [third], next: success}
"""


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_retry_skips_succeeded_steps(workdir: Path) -> None:
    counter = workdir / "counter"
    # `flaky` counts the lines already in the counter: 1 ("one") < 2, so it fails once.
    params = {"counter": str(counter), "tag": "one", "fail_times": 2, "x": 3}
    first = run_yaml(workdir, CHAIN, params)
    assert first.status == "failed"
    assert lines(counter) == ["one", "call"]
    second = retry(workdir, first.run_id)
    assert second.ok and second.run_id == first.run_id
    assert lines(counter) == ["one", "call", "call", "item-3"]  # `one` was not run again
    assert second.parameters["first"] == "one" and second.parameters["third"] == 3
    log = runlog(workdir, first.run_id)
    assert log.run.resumed == 1 and log.run.status == "succeeded"
    assert [a.attempt for a in step(log, "two").attempts] == [1, 2]
    assert [a.status for a in step(log, "two").attempts] == ["failed", "succeeded"]
    assert len(step(log, "one").attempts) == 1


def test_retry_refuses_a_changed_pipeline(workdir: Path) -> None:
    result = run_yaml(workdir, CHAIN, {"counter": str(workdir / "c"), "tag": "t", "fail_times": 5, "x": 1})
    assert result.status == "failed"
    path = workdir / "pipeline.yaml"
    path.write_text(variant(path.read_text(), lambda d: steps_of(d)["three"].update(returns=["third_value"])))
    with pytest.raises(RunRefused, match="has changed since run"):
        retry(workdir, result.run_id)


def test_retry_refuses_a_succeeded_run(workdir: Path) -> None:
    result = run_yaml(workdir, CHAIN, {"counter": str(workdir / "c"), "tag": "t", "fail_times": 0, "x": 1})
    assert result.ok
    with pytest.raises(RunRefused, match="already succeeded"):
        retry(workdir, result.run_id)


def test_retry_reruns_only_failed_map_items(workdir: Path) -> None:
    text = """
dag:
  start_at: fan
  steps:
    fan:
      type: map
      iterate_on: xs
      iterate_as: x
      branch:
        start_at: r
        steps:
          r: {command: ctasks.record_item, returns: [seen], next: check}
          check: {command: ctasks.fail_if, returns: [y], next: success}
      next: success
"""
    counter = workdir / "counter"
    first = run_yaml(workdir, text, {"xs": [1, 2, 3, 4], "counter": str(counter), "bad": 3})
    assert first.status == "failed"
    assert sorted(lines(counter)) == ["item-1", "item-2", "item-3", "item-4"]
    # Fix the bad value by changing the environment, not the pipeline: the item's `check` reruns.
    log_before = runlog(workdir, first.run_id)
    assert step(log_before, "fan", "2", "check").status == "failed"
    import ctasks

    original = ctasks.fail_if
    ctasks.fail_if = lambda x, bad: x  # type: ignore[assignment]
    try:
        second = retry(workdir, first.run_id)
    finally:
        ctasks.fail_if = original  # type: ignore[assignment]
    assert second.ok and second.parameters["y"] == [1, 2, 3, 4]
    assert sorted(lines(counter)) == ["item-1", "item-2", "item-3", "item-4"]  # no `r` re-ran


def test_object_returns_survive_resume(workdir: Path) -> None:
    text = """
dag:
  start_at: make
  steps:
    make: {command: ctasks.make_box, returns: [{name: box, kind: object}], next: open}
    open: {command: ctasks.flaky, returns: [r], next: unbox}
    unbox: {command: ctasks.open_box, returns: [v], next: success}
"""
    params = {"value": 9, "counter": str(workdir / "c"), "fail_times": 1}
    first = run_yaml(workdir, text, params)
    assert first.status == "failed"
    second = retry(workdir, first.run_id)
    assert second.ok and second.parameters["v"] == 9


KILLED = """
dag:
  start_at: before
  steps:
    before: {command: ctasks.record, returns: [b], next: fan}
    fan:
      type: map
      iterate_on: xs
      iterate_as: x
      max_parallelism: 1
      branch:
        start_at: item
        steps:
          item: {command: ctasks.die_at, returns: [y], next: success}
      next: killer
    killer: {command: ctasks.die_once, next: after}
    after: {command: ctasks.record, returns: [a], next: success}
"""


def test_sigkill_mid_run_then_retry_finishes_without_rerunning(workdir: Path, file_config: Path) -> None:
    (workdir / "pipeline.yaml").write_text(KILLED)
    counter = workdir / "counter"
    (workdir / "params.yaml").write_text(
        f"counter: {counter}\nmarker: {workdir / 'marker'}\nkill_marker: {workdir / 'kill'}\n"
        "tag: side-effect\nxs: [0, 1, 2, 3, 4]\nat: 2\n"
    )
    args = ["-f", "pipeline.yaml", "-c", str(file_config)]
    pythonpath = {"PYTHONPATH": str(TASKS)}
    killed = run_cli("execute", *args, "-p", "params.yaml", "--run-id", "killme", cwd=workdir, env=pythonpath)
    assert killed.returncode == -9, killed.stderr
    assert lines(counter) == ["side-effect", "item-0", "item-1"]

    shown = run_cli("runs", "show", "killme", "-c", str(file_config), cwd=workdir)
    assert shown.returncode == 0, shown.stderr
    assert "interrupted" in shown.stdout and "conveyor retry killme" in shown.stdout

    # Item 2 killed the process; the retry finishes it, then `killer` kills the run again.
    again = run_cli("retry", "killme", "-c", str(file_config), cwd=workdir, env=pythonpath)
    assert again.returncode == -9, again.stderr
    assert lines(counter) == ["side-effect", "item-0", "item-1", "item-2", "item-3", "item-4"]
    final = run_cli("retry", "killme", "-c", str(file_config), cwd=workdir, env=pythonpath)
    assert final.returncode == 0, final.stdout + final.stderr
    assert lines(counter) == [
        "side-effect",
        "item-0",
        "item-1",
        "item-2",
        "item-3",
        "item-4",
        "die",
        "side-effect",
    ]
    log = runlog(workdir, "killme", _config(file_config))
    assert log.run.status == "succeeded" and log.run.resumed == 2
    assert log.run.final_parameters["y"] == [0, 1, 2, 3, 4]
    assert len(step(log, "before").attempts) == 1


def _config(path: Path):  # type: ignore[no-untyped-def]
    from conveyor.spec.load import load_config

    return load_config(path)


def test_resuming_reruns_a_step_whose_objects_are_gone(workdir: Path) -> None:
    """With catalog 'none', object returns live only in the process that made them: a resume
    runs the producing step again instead of failing."""
    from conveyor.spec.load import config_from_data

    text = """
dag:
  start_at: make
  steps:
    make: {command: ctasks.make_box, returns: [{name: box, kind: object}], next: use}
    use: {command: ctasks.open_box_once, returns: [v], next: success}
"""
    config = config_from_data(
        {
            "run_log_store": {"type": "file", "config": {"path": str(workdir / "runs")}},
            "catalog": {"type": "none"},
        }
    )
    marker = workdir / "opened"
    first = run_yaml(workdir, text, {"value": 7, "marker": str(marker)}, config=config)
    assert first.status == "failed"
    again = retry(workdir, first.run_id, config)
    assert again.ok and again.parameters["v"] == 7
    assert len(step(runlog(workdir, first.run_id, config), "make").attempts) == 2


def test_step_names_holding_the_old_separator_stay_apart_on_retry(workdir: Path) -> None:
    """A top-level step named "x<US>y<US>z" and the step z of branch y of parallel x once
    folded into one record: retry then took the failed one for succeeded."""
    text = """
dag:
  start_at: "x\\x1fy\\x1fz"
  steps:
    "x\\x1fy\\x1fz": {command: ctasks.record, returns: [first], next: x}
    x:
      type: parallel
      branches:
        y: {start_at: z, steps: {z: {command: ctasks.flaky, returns: [second], next: success}}}
      next: success
"""
    params = {"counter": str(workdir / "c"), "tag": "t", "fail_times": 2}  # record's line counts as one
    first = run_yaml(workdir, text, params)
    assert first.status == "failed"
    log = runlog(workdir, first.run_id)
    assert step(log, "x\x1fy\x1fz").status == "succeeded" and step(log, "x", "y", "z").status == "failed"
    again = retry(workdir, first.run_id)
    assert again.ok
    assert len(step(runlog(workdir, first.run_id), "x", "y", "z").attempts) == 2
