"""conveyor.testing: a pipeline file runs in-process, recorded in memory, and the result
shows each step's status, returns, metrics and output."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.runlog.records import Status
from conveyor.spec.errors import SpecError
from conveyor.testing import run_pipeline

STEPS = """
from pathlib import Path

def numbers(count: int) -> list[int]:
    print(f"making {count} numbers")
    return list(range(1, count + 1))

def square(n: int) -> int:
    if n == 13:
        raise ValueError("unlucky")
    return n * n

def total(squares: list[int]) -> int:
    Path("total.txt").write_text(str(sum(squares)))
    return sum(squares)
"""

PIPELINE = """
dag:
  start_at: numbers
  steps:
    numbers: {command: helper_steps_{tag}.numbers, returns: [ns], next: fan}
    fan:
      type: map
      iterate_on: ns
      iterate_as: n
      branch:
        start_at: square
        steps:
          square: {command: helper_steps_{tag}.square, returns: [squares], next: success}
      next: total
    total: {command: helper_steps_{tag}.total, returns: [{name: sum, kind: metric}], next: success}
"""


def project(tmp_path: Path, tag: str) -> Path:
    (tmp_path / f"helper_steps_{tag}.py").write_text(STEPS)
    path = tmp_path / "pipeline.yaml"
    path.write_text(PIPELINE.replace("{tag}", tag))
    return path


def test_a_run_shows_parameters_returns_metrics_and_output(tmp_path: Path) -> None:
    pipeline = project(tmp_path, "ok")
    work = tmp_path / "work"
    work.mkdir()
    run = run_pipeline(pipeline, {"count": 3}, cwd=work)
    run.assert_succeeded()
    assert run.status is Status.SUCCEEDED and run.failed_steps == []
    assert run.parameters["squares"] == [1, 4, 9] and run.parameters["sum"] == 14
    assert run.returns("numbers") == {"ns": [1, 2, 3]}
    assert run.returns("fan/2/square") == {"squares": 9}
    assert run.returns(("fan", "0", "square")) == {"squares": 1}
    assert run.metrics("total") == {"sum": 14}
    assert "making 3 numbers" in run.output("numbers")
    # The run's working directory was the one given, and the caller's is back.
    assert (work / "total.txt").read_text() == "14" and Path.cwd() != work


def test_a_failed_run_is_returned_and_assert_succeeded_names_the_step_and_error(tmp_path: Path) -> None:
    run = run_pipeline(project(tmp_path, "fail"), {"count": 13}, cwd=tmp_path)
    assert run.status is Status.FAILED and run.failed_steps == ["fan/12/square"]
    with pytest.raises(AssertionError, match=r"fan/12/square: .*unlucky"):
        run.assert_succeeded()


def test_parameters_file_then_mapping_and_the_environment_is_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("count: 5\n")
    monkeypatch.setenv("CONVEYOR_PRM_count", "2")
    assert run_pipeline(project(tmp_path, "pf"), parameters_file=params, cwd=tmp_path).parameters["sum"] == 55
    run = run_pipeline(project(tmp_path, "pm"), {"count": 1}, parameters_file=params, cwd=tmp_path)
    assert run.parameters["sum"] == 1


def test_the_config_chooses_the_executor_and_catalog_but_the_run_log_stays_in_memory(tmp_path: Path) -> None:
    config = {
        "executor": {"type": "local", "config": {"isolation": "process"}},
        "run_log_store": {"type": "file", "config": {"path": str(tmp_path / "runs")}},
    }
    run = run_pipeline(project(tmp_path, "cfg"), {"count": 2}, config=config, cwd=tmp_path, run_id="t1")
    run.assert_succeeded()
    assert run.result.run_id == "t1" and run.store.load("t1").status is Status.SUCCEEDED
    assert not (tmp_path / "runs").exists()


def test_an_unknown_step_is_a_key_error_listing_the_recorded_ones(tmp_path: Path) -> None:
    run = run_pipeline(project(tmp_path, "key"), {"count": 1}, cwd=tmp_path)
    with pytest.raises(KeyError, match=r"no step 'nope'.*recorded: .*numbers"):
        run.step("nope")


def test_an_invalid_pipeline_raises_the_located_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("dag:\n  start_at: a\n  steps:\n    a: {command: x.y, nxet: success}\n")
    with pytest.raises(SpecError, match="nxet"):
        run_pipeline(bad)
