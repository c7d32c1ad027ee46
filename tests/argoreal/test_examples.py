"""Every example, rendered by ``conveyor render argo``, submitted to a real kube-apiserver and
driven to its end by Argo's real workflow-controller (pods run by the fake kubelet); the
workflow's phase, conveyor's run log and the catalog equal those of the same pipeline run
in-process."""

from __future__ import annotations

from pathlib import Path

import pytest

from argo.test_e2e import EXAMPLES, copy, render, run_local, summary
from support.argo_real import Namespace

pytestmark = pytest.mark.argoreal


@pytest.mark.parametrize(
    "example", ["hello_world", "parameters", "parallel", "map_files", "on_failure", "conditional", "loop"]
)
def test_example_on_the_real_controller_matches_local(
    example: str, namespace: Namespace, tmp_path: Path
) -> None:
    argo_dir = copy(EXAMPLES / example, tmp_path, "argo")
    local_dir = copy(EXAMPLES / example, tmp_path, "local")
    done = namespace.submit(render(argo_dir), {"conveyor-data": argo_dir})
    assert run_local(local_dir) == 0
    argo, local = summary(argo_dir, done.name), summary(local_dir, "local-run")
    assert done.phase == "Succeeded", [(p.argv[3:5], p.exit_code, p.stderr[-800:]) for p in done.pods]
    assert argo["status"] == local["status"] == "succeeded"
    assert argo["final"] == local["final"]
    assert argo["steps"] == local["steps"]
    assert argo["catalog"] == local["catalog"]
    commands = [p.argv[3] for p in done.pods]
    assert commands[0] == "run-start" and commands[-1] == "run-end"
