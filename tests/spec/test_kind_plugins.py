"""A broken ``conveyor.kinds`` entry point is the plugin's error, said in one located line
(exit 2), never an internal error of conveyor."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from support import run_cli

PIPELINE = (
    "dag:\n  start_at: a\n  steps:\n    a: {type: stub, next: b}\n    b: {type: expect, next: success}\n"
)
MODULE = '''
from dataclasses import dataclass

@dataclass
class NotAModel:
    """A dataclass, not a pydantic node model."""
    bound: int = 1
'''


def _install(site: Path, entry: str) -> None:
    """A plugin distribution as pip leaves it: a dist-info folder with its entry point."""
    dist = site / "broken_kind-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-kind\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[conveyor.kinds]\n{entry}\n")
    (site / "broken_kind.py").write_text(MODULE)


@pytest.mark.parametrize(
    ("entry", "said"),
    [
        ("expect = broken_kind:NotAModel", "names NotAModel, which is not a node model"),
        ("expect = broken_kind:Missing", "cannot be loaded: AttributeError"),
        ("expect = no_such_module:Model", "cannot be loaded: ModuleNotFoundError"),
    ],
)
def test_a_broken_plugin_is_a_located_error(tmp_path: Path, entry: str, said: str) -> None:
    site = tmp_path / "site"
    _install(site, entry)
    (tmp_path / "pipeline.yaml").write_text(PIPELINE)
    env = {"PYTHONPATH": os.pathsep.join(p for p in [str(site), os.environ.get("PYTHONPATH", "")] if p)}
    result = run_cli("validate", "-f", "pipeline.yaml", cwd=tmp_path, env=env)
    assert result.returncode == 2, result.stderr
    assert said in result.stderr and "expect" in result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
