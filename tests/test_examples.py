"""Every example runs, through the real CLI, and does what it says."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support import ROOT, run_cli

EXAMPLES = ROOT / "examples"


def copy(name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    shutil.copytree(EXAMPLES / name, target)
    return target


def execute(where: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    config = ["-c", "config.yaml"] if (where / "config.yaml").exists() else []
    params = ["-p", "params.yaml"] if (where / "params.yaml").exists() else []
    return run_cli("execute", "-f", "pipeline.yaml", *config, *params, *extra, cwd=where)


@pytest.mark.parametrize(
    ("name", "expect"),
    [
        ("hello_world", "Hello, world!"),
        ("parameters", "shell sees steps=30 label=SENTINEL-2"),
        ("parallel", "combine"),
        ("on_failure", "cleaning up after the failed extract"),
        ("conditional", "route"),
        ("map_files", "5 items, 0 failed"),
        ("loop", "3 parts ready; done: True"),
        ("mocked", "mocked (not run)"),
    ],
)
def test_example_runs(name: str, expect: str, tmp_path: Path) -> None:
    where = copy(name, tmp_path)
    out = execute(where, "--run-id", f"ex-{name}")
    assert out.returncode == 0, out.stdout + out.stderr
    assert expect in out.stdout + out.stderr


def test_map_files_example_uses_the_catalog(tmp_path: Path) -> None:
    where = copy("map_files", tmp_path)
    assert execute(where, "--run-id", "m").returncode == 0
    stored = sorted(p.name for p in (where / ".conveyor/catalog/m/out/sums").iterdir())
    assert stored == [f"part-{i}.csv.sum" for i in range(5)]
    shown = run_cli("runs", "show", "m", "-c", "config.yaml", cwd=where)
    assert '"total_rows": 15' in shown.stdout


def test_conditional_example_takes_the_large_branch(tmp_path: Path) -> None:
    where = copy("conditional", tmp_path)
    assert execute(where, "--run-id", "c").returncode == 0
    (where / "config.yaml").write_text("run_log_store: {type: file}\n")
    out = execute(where, "--run-id", "c2")
    shown = run_cli("runs", "show", "c2", "-c", "config.yaml", cwd=where)
    assert out.returncode == 0 and "branch large" in shown.stdout and "split 250 into chunks" in shown.stdout


def test_sdk_example_runs_and_writes_equivalent_yaml(tmp_path: Path) -> None:
    where = copy("sdk", tmp_path)
    out = subprocess.run(
        [sys.executable, "sdk_pipeline.py", "written.yaml"],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "sum of squares: 30" in out.stdout and "succeeded" in out.stdout
    again = run_cli(
        "execute", "-f", "written.yaml", "-p", "/dev/null", cwd=where, env={"CONVEYOR_PRM_count": "4"}
    )
    assert again.returncode == 0, again.stderr
    assert "total is 30" in again.stdout


def test_caching_example_second_run_takes_no_time(tmp_path: Path) -> None:
    where = copy("caching", tmp_path)
    first = execute(where, "--run-id", "first")
    assert first.returncode == 0, first.stderr
    second = execute(where, "--run-id", "second")
    assert second.returncode == 0, second.stderr
    shown = run_cli("runs", "show", "second", "-c", "config.yaml", cwd=where).stdout
    assert shown.count("cached: from run first") == 2
    from conveyor.runlog.file import FileRunLogStore

    runs = FileRunLogStore(str(where / ".conveyor/runs"))
    took = {r: runs.load(r).run.ended_at - runs.load(r).run.started_at for r in ("first", "second")}  # type: ignore[operator]
    assert took["first"] >= 2 and took["second"] < 1
    assert runs.load("second").run.final_parameters["mean"] == runs.load("first").run.final_parameters["mean"]
