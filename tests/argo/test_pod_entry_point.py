"""A pod runs the ``conveyor`` entry point an image with conveyor installed has, not
``python -m conveyor.cli``: the functions beside the pipeline must still import. (Found by
the real-argoexec tier, tests/argoreal/test_argoexec.py: with ``python -m`` the working
directory was on the import path by accident, and the fast tiers hid that pods never put it
there themselves.)"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from argo.test_e2e import ARGO_CONFIG, EXAMPLES
from support import ROOT


def entry_point(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The installed ``conveyor`` script beside this interpreter, run from ``cwd`` (its
    import path starts with the script's folder, not the working directory)."""
    script = Path(sys.executable).parent / "conveyor"
    if not script.is_file():
        pytest.skip(f"no conveyor entry point beside {sys.executable}")
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), COLUMNS="200")
    return subprocess.run([str(script), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_a_pod_started_through_the_entry_point_imports_the_pipelines_functions(tmp_path: Path) -> None:
    where = tmp_path / "project"
    shutil.copytree(EXAMPLES / "parameters", where)
    (where / "argo.yaml").write_text(ARGO_CONFIG)
    files = ["--file", "pipeline.yaml", "--config-file", "argo.yaml"]
    start = entry_point("run-start", "r1", *files, "--parameters-file", "params.yaml", cwd=where)
    assert start.returncode == 0, start.stdout + start.stderr
    plan = entry_point("execute-single-node", "r1", "plan", *files, cwd=where)
    output = plan.stdout + plan.stderr
    assert "cannot import module 'param_steps'" not in output
    assert plan.returncode == 0, output
