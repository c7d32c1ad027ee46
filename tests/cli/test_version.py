"""``conveyor --version`` says which conveyor is installed, from the package's metadata."""

from __future__ import annotations

import tomllib
from importlib.metadata import version

from support import ROOT, run_cli


def test_version_prints_the_installed_version_and_exits_0() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    out = run_cli("--version", cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"conveyor {version('conveyor')}\n" == f"conveyor {declared}\n"
