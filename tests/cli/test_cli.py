"""The command line, run as a real process: exit codes, messages, no tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

from support import TASKS, run_cli

ENV = {"PYTHONPATH": str(TASKS)}
GOOD = """
dag:
  start_at: a
  steps:
    a: {command: ctasks.add, returns: [c], next: fan}
    fan:
      type: map
      iterate_on: xs
      iterate_as: x
      branch: {start_at: sq, steps: {sq: {command: ctasks.square, returns: [y], next: success}}}
      next: success
"""


def write(tmp_path: Path, text: str, name: str = "pipeline.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_help_lists_commands(tmp_path: Path) -> None:
    out = run_cli("--help", cwd=tmp_path)
    assert out.returncode == 0
    for command in ("execute", "validate", "graph", "retry", "schema", "runs"):
        assert command in out.stdout


def test_execute_success_summary_and_runs_commands(tmp_path: Path, file_config: Path) -> None:
    write(tmp_path, GOOD)
    write(tmp_path, "a: 1\nb: 2\nxs: [1, 2, 3]\n", "params.yaml")
    out = run_cli(
        "execute",
        "-f",
        "pipeline.yaml",
        "-c",
        str(file_config),
        "-p",
        "params.yaml",
        "--run-id",
        "r-1",
        cwd=tmp_path,
        env=ENV,
    )
    assert out.returncode == 0, out.stderr
    assert "run r-1: succeeded" in out.stdout and "3 items, 0 failed" in out.stdout
    assert "✓ a" in out.stderr
    listed = run_cli("runs", "list", "-c", str(file_config), cwd=tmp_path)
    assert listed.returncode == 0 and "r-1" in listed.stdout and "succeeded" in listed.stdout
    shown = run_cli("runs", "show", "r-1", "-c", str(file_config), "--items", "2", cwd=tmp_path)
    assert shown.returncode == 0
    assert "[0]" in shown.stdout and "[1]" in shown.stdout and "1 more items" in shown.stdout, shown.stdout
    assert '"c": 3' in shown.stdout
    again = run_cli(
        "execute",
        "-f",
        "pipeline.yaml",
        "-c",
        str(file_config),
        "-p",
        "params.yaml",
        "--run-id",
        "r-1",
        cwd=tmp_path,
        env=ENV,
    )
    assert again.returncode == 2 and "already exists" in again.stderr


def test_failed_run_exits_non_zero_with_step_and_error(tmp_path: Path, file_config: Path) -> None:
    write(
        tmp_path, "dag:\n  start_at: boom\n  steps:\n    boom: {command: ctasks.fail_always, next: success}\n"
    )
    out = run_cli(
        "execute", "-f", "pipeline.yaml", "-c", str(file_config), "--run-id", "bad", cwd=tmp_path, env=ENV
    )
    assert out.returncode == 1
    assert "boom" in out.stdout and "RuntimeError: boom" in out.stdout and "failed" in out.stdout
    logs = run_cli("runs", "logs", "bad", "boom", "-c", str(file_config), cwd=tmp_path)
    assert logs.returncode == 0 and "RuntimeError: boom" in logs.stdout
    retry = run_cli("retry", "bad", "-c", str(file_config), cwd=tmp_path, env=ENV)
    assert retry.returncode == 1 and "resumed, #1" in retry.stderr


def test_invalid_pipeline_is_reported_without_traceback(tmp_path: Path) -> None:
    write(tmp_path, "dag:\n  start_at: a\n  steps:\n    a: {comand: x.y, next: b}\n")
    for command in ("validate", "execute"):
        out = run_cli(command, "-f", "pipeline.yaml", cwd=tmp_path)
        assert out.returncode == 2
        assert "Traceback" not in out.stderr + out.stdout
        assert "pipeline.yaml:4: dag.steps.a.comand: unknown key 'comand'" in out.stderr
        assert "did you mean 'command'?" in out.stderr
        assert "next names an unknown step 'b'" in out.stderr


def test_bad_config_is_located(tmp_path: Path) -> None:
    write(tmp_path, GOOD)
    write(tmp_path, "executor: {type: local, config: {max_worker: 2}}\n", "config.yaml")
    out = run_cli("validate", "-f", "pipeline.yaml", "-c", "config.yaml", cwd=tmp_path)
    assert out.returncode == 2 and "does not take 'max_worker'" in out.stderr
    assert "config.yaml:1: executor.config.max_worker" in out.stderr
    assert "did you mean 'max_workers'?" in out.stderr
    write(tmp_path, "executor: {type: dusk}\n", "config.yaml")
    out = run_cli("execute", "-f", "pipeline.yaml", "-c", "config.yaml", cwd=tmp_path)
    assert (
        out.returncode == 2 and "unknown executor type 'dusk'" in out.stderr and "Traceback" not in out.stderr
    )


def test_unknown_run_and_missing_file(tmp_path: Path, file_config: Path) -> None:
    out = run_cli("runs", "show", "nope", "-c", str(file_config), cwd=tmp_path)
    assert out.returncode == 2 and "no run 'nope'" in out.stderr
    out = run_cli("execute", "-f", "missing.yaml", cwd=tmp_path)
    assert out.returncode == 2 and "file not found" in out.stderr


def test_validate_ok(tmp_path: Path) -> None:
    write(tmp_path, GOOD)
    # validate imports the step functions: they must be importable, as for a run
    out = run_cli("validate", "-f", "pipeline.yaml", cwd=tmp_path, env=ENV)
    assert out.returncode == 0 and f"valid pipeline '{tmp_path.name}' (3 steps)" in out.stdout


def test_graph_formats(tmp_path: Path) -> None:
    write(tmp_path, GOOD)
    mermaid = run_cli("graph", "-f", "pipeline.yaml", "--format", "mermaid", cwd=tmp_path)
    assert mermaid.returncode == 0 and mermaid.stdout.startswith("flowchart TD")
    assert '["a"]' in mermaid.stdout and "subgraph" in mermaid.stdout
    dot = run_cli("graph", "-f", "pipeline.yaml", "--format", "dot", cwd=tmp_path)
    assert dot.stdout.startswith("digraph pipeline {") and 'label="fan"' in dot.stdout
    bad = run_cli("graph", "-f", "pipeline.yaml", "--format", "png", cwd=tmp_path)
    assert bad.returncode == 2 and "expected mermaid or dot" in bad.stderr


def test_schema_is_json(tmp_path: Path) -> None:
    out = run_cli("schema", cwd=tmp_path)
    assert out.returncode == 0 and json.loads(out.stdout)["title"] == "conveyor pipeline"


def test_environment_parameters_win(tmp_path: Path, file_config: Path) -> None:
    write(tmp_path, GOOD)
    write(tmp_path, "a: 1\nb: 2\nxs: [1]\n", "params.yaml")
    env = {**ENV, "CONVEYOR_PRM_b": "40"}
    out = run_cli(
        "execute",
        "-f",
        "pipeline.yaml",
        "-c",
        str(file_config),
        "-p",
        "params.yaml",
        "--run-id",
        "envrun",
        cwd=tmp_path,
        env=env,
    )
    assert out.returncode == 0
    shown = run_cli("runs", "show", "envrun", "-c", str(file_config), cwd=tmp_path)
    assert '"c": 41' in shown.stdout
