"""The pod commands (``executors.pods``) called as functions, in the order an orchestrator
calls them: run-start, fan-out, one execute-single-node per item, fan-in, run-end. Each
call rebuilds what it needs from the pipeline file and a real file run log, as separate
pods do; only the run id, step paths and the small outputs pass between them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conveyor.executors.contract import POD_CONTRACT
from conveyor.executors.pods import (
    PodError,
    execute_single_node,
    kind_verb,
    run_end,
    run_start,
)
from conveyor.runlog.file import FileRunLogStore
from conveyor.runlog.records import Status

PIPELINE = """dag:
  start_at: fan
  steps:
    fan:
      type: map
      iterate_on: xs
      iterate_as: x
      branch: {start_at: sq, steps: {sq: {command: ctasks.square, returns: [y], next: success}}}
      next: success
"""
CONFIG = (
    "run_log_store: {type: file, config: {path: runs}}\ncatalog: {type: file, config: {location: catalog}}\n"
)


@pytest.fixture
def pod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with the pipeline, config and parameters; outputs to ``out/``."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(POD_CONTRACT.outputs_env, str(tmp_path / "out"))
    (tmp_path / "pipeline.yaml").write_text(PIPELINE)
    (tmp_path / "config.yaml").write_text(CONFIG)
    (tmp_path / "params.yaml").write_text("xs: [2, 3, 4]\n")
    return tmp_path


@pytest.mark.parametrize("durability", ["batched", "relaxed", "strict"])
def test_a_map_run_pod_by_pod(pod: Path, durability: str) -> None:
    """At every durability: a pod's step is recorded before the pod's process is done
    (relaxed holds events in the process until written: the pod writes them out)."""
    (pod / "config.yaml").write_text(CONFIG.replace("path: runs}", f"path: runs, durability: {durability}}}"))
    run_id = run_start("r1", "pipeline.yaml", "config.yaml", "params.yaml")
    assert run_id == "r1"
    assert kind_verb("fan-out", "r1", "fan", "pipeline.yaml", "config.yaml") is True
    assert (pod / "out" / "count").read_text() == "3"
    assert json.loads((pod / "out" / "indices").read_text()) == [0, 1, 2]
    for index in json.loads((pod / "out" / "indices").read_text()):
        assert execute_single_node("r1", f"fan/{index}/sq", "pipeline.yaml", "config.yaml") is True
    assert kind_verb("fan-in", "r1", "fan", "pipeline.yaml", "config.yaml") is True
    assert run_end("r1", "Succeeded", "pipeline.yaml", "config.yaml") is Status.SUCCEEDED
    log = FileRunLogStore(str(pod / "runs")).load("r1")
    assert log.run.final_parameters["y"] == [4, 9, 16]
    assert log.run.orchestrator == "argo" and log.run.replayed_status == Status.SUCCEEDED
    assert log.step(["fan", "1", "sq"]).status is Status.SUCCEEDED  # type: ignore[union-attr]


def test_fan_in_before_every_item_ran_fails_the_map(pod: Path) -> None:
    run_start("r1", "pipeline.yaml", "config.yaml", "params.yaml")
    kind_verb("fan-out", "r1", "fan", "pipeline.yaml", "config.yaml")
    execute_single_node("r1", "fan/0/sq", "pipeline.yaml", "config.yaml")
    assert kind_verb("fan-in", "r1", "fan", "pipeline.yaml", "config.yaml") is False
    assert run_end("r1", "Failed", "pipeline.yaml", "config.yaml") is Status.FAILED
    log = FileRunLogStore(str(pod / "runs")).load("r1")
    assert log.step(["fan"]).status is Status.FAILED  # type: ignore[union-attr]


def test_a_second_run_start_resumes_the_same_run(pod: Path) -> None:
    run_start("r1", "pipeline.yaml", "config.yaml", "params.yaml")
    run_start("r1", "pipeline.yaml", "config.yaml", "params.yaml")  # the orchestrator retried it
    assert FileRunLogStore(str(pod / "runs")).load("r1").run.resumed == 1


def test_pods_refuse_what_they_cannot_do(pod: Path) -> None:
    with pytest.raises(
        PodError, match="run 'nope' has not been started: run 'conveyor run-start nope' first"
    ):
        kind_verb("fan-out", "nope", "fan", "pipeline.yaml", "config.yaml")
    run_start("r1", "pipeline.yaml", "config.yaml", "params.yaml")
    with pytest.raises(PodError, match="'fan/0/sq' is a task step; its verbs: none, not 'fan-out'"):
        kind_verb("fan-out", "r1", "fan/0/sq", "pipeline.yaml", "config.yaml")
    with pytest.raises(PodError, match="'fan' is a map step; its verbs: fan-out, fan-in, not 'loop-check'"):
        kind_verb("loop-check", "r1", "fan", "pipeline.yaml", "config.yaml")
    (pod / "changed.yaml").write_text(PIPELINE.replace("ctasks.square", "ctasks.add"))
    with pytest.raises(PodError, match="is not the pipeline run 'r1' started with"):
        execute_single_node("r1", "fan/0/sq", "changed.yaml", "config.yaml")
    with pytest.raises(PodError, match="exists with a different pipeline"):
        run_start("r1", "changed.yaml", "config.yaml", "params.yaml")
