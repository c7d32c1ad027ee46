"""The loop node: do-while semantics, recording per iteration, failure, resume inside the
failed iteration, and the same outcome through the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conveyor.runlog.records import Status
from support import TASKS, run_cli
from support.runs import retry, run_yaml, runlog, steps_of, variant

LOOP = """dag:
  start_at: grow
  steps:
    grow:
      type: loop
      max_iterations: 10
      break_on: done
      index_as: i
      branch:
        start_at: body
        steps:
          body: {command: ctasks.loop_body, returns: [total, done], next: check}
          check: {command: ctasks.fail_once_at, next: success}
      next: after
      on_failure: handled
    after: {command: ctasks.noop, next: success}
    handled: {command: ctasks.noop, next: fail}
"""


def params(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return {"total": 0, "stop_at": 3, "fail_at": -1, "marker": str(tmp_path / "m"), **extra}


def test_iterates_until_break_on_carrying_parameters(tmp_path: Path) -> None:
    result = run_yaml(tmp_path, LOOP, params(tmp_path))
    assert result.ok
    # 0+1+2+3: each iteration saw the total the one before left; the index is not carried.
    assert result.parameters["total"] == 6 and result.parameters["done"] is True
    assert "i" not in result.run.final_parameters
    log = runlog(tmp_path, result.run_id)
    bodies = sorted(p for p in log.steps if p[-1] == "body")
    assert bodies == [("grow", str(n), "body") for n in range(4)]
    loop = log.steps[("grow",)]
    assert loop.status is Status.SUCCEEDED
    assert loop.info["iterations"] == 4 and loop.info["ended"] == "break"


@pytest.mark.parametrize(("policy", "ok"), [("succeed", True), ("fail", False)])
def test_max_iterations_ends_the_loop_as_configured(policy: str, ok: bool, tmp_path: Path) -> None:
    def cap(data: dict[str, Any]) -> None:
        steps_of(data)["grow"].update(max_iterations=2, on_max_iterations=policy)

    result = run_yaml(tmp_path, variant(LOOP, cap), params(tmp_path, stop_at=99))
    log = runlog(tmp_path, result.run_id)
    assert log.steps[("grow",)].info["iterations"] == 2
    assert log.steps[("grow",)].info["ended"] == "max_iterations"
    assert result.ok is ok
    # a failing loop goes to its on_failure step; the parameters are the last iteration's
    assert (("handled",) in log.steps) is not ok
    assert result.parameters["total"] == 1


def test_failed_iteration_fails_the_loop_and_retry_resumes_inside_it(tmp_path: Path) -> None:
    first = run_yaml(tmp_path, LOOP, params(tmp_path, fail_at=2))
    assert not first.ok
    log = runlog(tmp_path, first.run_id)
    assert log.steps[("grow",)].info["failed_iteration"] == 2
    assert log.steps[("handled",)].status is Status.SUCCEEDED

    again = retry(tmp_path, first.run_id)
    assert again.ok and again.parameters["total"] == 6
    log = runlog(tmp_path, first.run_id)
    # finished iterations were reused, not run again; the failed step ran a second time
    assert [len(log.steps[("grow", str(n), "body")].attempts) for n in range(4)] == [1, 1, 1, 1]
    assert len(log.steps[("grow", "2", "check")].attempts) == 2
    assert log.steps[("grow",)].status is Status.SUCCEEDED


def test_break_on_that_is_not_a_boolean_is_a_clear_failure(tmp_path: Path) -> None:
    def textual(data: dict[str, Any]) -> None:
        steps_of(data)["grow"]["break_on"] = "total"

    result = run_yaml(tmp_path, variant(LOOP, textual), params(tmp_path))
    loop = runlog(tmp_path, result.run_id).steps[("grow",)]
    assert not result.ok
    assert "break_on parameter 'total' must be true or false" in loop.info["error"]


def test_cli_shows_iterations_and_exit_codes(tmp_path: Path) -> None:
    (tmp_path / "pipeline.yaml").write_text(LOOP)
    (tmp_path / "params.yaml").write_text(f"total: 0\nstop_at: 1\nfail_at: -1\nmarker: {tmp_path / 'm'}\n")
    (tmp_path / "config.yaml").write_text("run_log_store: {type: file}\n")
    out = run_cli(
        "execute",
        "-f",
        "pipeline.yaml",
        "-c",
        "config.yaml",
        "-p",
        "params.yaml",
        "--run-id",
        "l1",
        cwd=tmp_path,
        env={"PYTHONPATH": str(TASKS)},
    )
    assert out.returncode == 0, out.stderr
    shown = run_cli("runs", "show", "l1", "-c", "config.yaml", cwd=tmp_path).stdout
    assert "2 iterations, ended by break_on" in shown and "iteration 1" in shown
    graph = run_cli("graph", "-f", "pipeline.yaml", cwd=tmp_path).stdout
    assert "repeat until done (at most 10)" in graph
    failing = run_cli(
        "execute", "-f", "pipeline.yaml", "-p", "params.yaml", "-c", "config.yaml",
        cwd=tmp_path, env={"PYTHONPATH": str(TASKS), "CONVEYOR_PRM_fail_at": "0"},
    )  # fmt: skip
    assert failing.returncode == 1 and "iteration 0 failed" in failing.stdout


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"max_iterations": 0}, "greater than or equal to 1"),
        ({"break_on": "not a name"}, "not a valid name"),
        ({"index_as": None}, "wrong value"),
    ],
)
def test_invalid_loops_are_refused_with_their_location(
    change: dict[str, Any], message: str, tmp_path: Path
) -> None:
    def apply(data: dict[str, Any]) -> None:
        steps_of(data)["grow"].update(change)

    (tmp_path / "pipeline.yaml").write_text(variant(LOOP, apply))
    out = run_cli("validate", "-f", "pipeline.yaml", cwd=tmp_path)
    assert out.returncode == 2
    assert message in out.stderr and "dag.steps.grow" in out.stderr


def test_a_value_returned_under_the_index_name_is_handed_on(tmp_path: Path) -> None:
    """The index itself is not carried out of the loop, but a step's return of that name is
    (runnable's max_iterations example reads it after the loop); each iteration still sees
    its own index."""
    text = """dag:
  start_at: grow
  steps:
    grow:
      type: loop
      max_iterations: 3
      break_on: done
      index_as: i
      branch:
        start_at: body
        steps:
          body: {command: ctasks.index_seen, returns: [i, seen], next: success}
      next: success
"""
    result = run_yaml(tmp_path, text, {"seen": [], "done": False})
    assert result.ok
    assert result.parameters["seen"] == [0, 1, 2]
    assert result.run.final_parameters["i"] == 20
