"""The mocked executor walks a pipeline without running its tasks: composites, on_failure
paths and conditionals work; patches replace commands; runs are recorded and marked."""

from __future__ import annotations

import shutil
from pathlib import Path

from conveyor.runlog.file import FileRunLogStore
from support import ROOT, TASKS, run_cli

HERE = Path(__file__).parent
ENV = {"PYTHONPATH": f"{HERE}:{TASKS}"}


def test_example_takes_the_fallback_path_without_running_anything(tmp_path: Path) -> None:
    where = tmp_path / "mocked"
    shutil.copytree(ROOT / "examples" / "mocked", where)
    args = ["execute", "-f", "pipeline.yaml", "-c", "config.yaml", "-p", "params.yaml", "--run-id", "m"]
    out = run_cli(*args, cwd=where)
    assert out.returncode == 0, out.stderr
    assert not list(where.glob("ran-*"))  # no step's code ran
    log = FileRunLogStore(str(where / ".conveyor/runs")).load("m")
    steps = log.steps
    assert steps[("download",)].status == "failed" and steps[("download",)].info["patched"] == "command"
    assert steps[("use_cache",)].info["mocked"] is True
    assert steps[("process",)].info["items"] == 3  # iterated on the initial parameter
    shown = run_cli("runs", "show", "m", "-c", "config.yaml", cwd=where).stdout
    assert "mocked (not run)" in shown and "patched: command" in shown and "tasks were not run" in shown


CONDITIONAL = """dag:
  start_at: pick
  steps:
    pick: {type: task, command: rtasks.touch, next: route}
    route:
      type: conditional
      parameter: mode
      branches:
        fast: {start_at: f, steps: {f: {type: task, command: rtasks.touch, next: success}}}
        slow: {start_at: s, steps: {s: {type: task, command: rtasks.say, returns: [word], next: success}}}
      next: success
"""


def test_patches_run_instead_and_conditionals_follow_parameters(tmp_path: Path) -> None:
    (tmp_path / "pipeline.yaml").write_text(CONDITIONAL)
    (tmp_path / "params.yaml").write_text("mode: slow\ncounter: calls\n")
    (tmp_path / "config.yaml").write_text(
        """pipeline-executor:
  type: mocked
  config:
    patches:
      s: {command: rtasks.say}
run_log_store: {type: file}
"""
    )
    args = ["execute", "-f", "pipeline.yaml", "-c", "config.yaml", "-p", "params.yaml", "--run-id", "c"]
    out = run_cli(*args, cwd=tmp_path, env=ENV)
    assert out.returncode == 0, out.stderr
    log = FileRunLogStore(str(tmp_path / ".conveyor/runs")).load("c")
    assert log.run.final_parameters["word"] == "hi"  # the patched step ran and returned
    assert not (tmp_path / "calls").exists()  # the mocked ones did not
    assert ("route", "slow", "s") in log.steps and ("route", "fast", "f") not in log.steps


def test_a_bad_patch_is_a_located_config_error(tmp_path: Path) -> None:
    (tmp_path / "pipeline.yaml").write_text(CONDITIONAL)
    (tmp_path / "config.yaml").write_text("executor: {type: mocked, config: {patches: {s: {comand: x}}}}\n")
    out = run_cli("execute", "-f", "pipeline.yaml", "-c", "config.yaml", cwd=tmp_path, env=ENV)
    assert out.returncode == 2
    assert "cannot set 'comand'" in out.stderr and "did you mean 'command'" in out.stderr.lower()
