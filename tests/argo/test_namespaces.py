"""Which namespace an Argo run's workflow goes to: ``--namespace``, else the config's
``namespace`` if it names one, else $ARGO_NAMESPACE (as the argo CLI reads it), else
"default". ARGO_NAMESPACE was ignored before: the config's default "default" hid it, and the
real Argo Server tier's workflows landed in a namespace nothing served."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support import ROOT, run_cli
from support.fake_argo import FakeArgo

IMAGE = 'image: "ghcr.io/example/conveyor:0.1"'


@pytest.fixture
def argo(tmp_path: Path) -> Iterator[FakeArgo]:
    (tmp_path / "pipeline.yaml").write_text((ROOT / "examples/hello_world/pipeline.yaml").read_text())
    (tmp_path / "plain.yaml").write_text(f"executor: {{type: argo, config: {{{IMAGE}}}}}\n")
    (tmp_path / "named.yaml").write_text(f"executor: {{type: argo, config: {{{IMAGE}, namespace: team}}}}\n")
    with FakeArgo() as fake:
        yield fake


@pytest.mark.parametrize(
    ("config", "env", "flag", "expected"),
    [
        ("plain.yaml", None, None, "default"),
        ("plain.yaml", "from-env", None, "from-env"),
        ("named.yaml", "from-env", None, "team"),
        ("named.yaml", "from-env", "from-flag", "from-flag"),
    ],
)
def test_the_namespace_a_workflow_goes_to(
    config: str, env: str | None, flag: str | None, expected: str, tmp_path: Path, argo: FakeArgo
) -> None:
    environ = {"ARGO_SERVER": argo.url, "ARGO_TOKEN": argo.token, "ARGO_NAMESPACE": env or ""}
    extra = ["--namespace", flag] if flag else []
    args = ["submit", "--to", "argo", "-f", "pipeline.yaml", "-c", config, "--run-id", "ns-1", *extra]
    out = run_cli(*args, cwd=tmp_path, env=environ)
    assert out.returncode == 0, out.stderr
    assert f"as workflow {expected}/ns-1" in out.stdout
    assert argo.workflows[(expected, "ns-1")]["metadata"]["namespace"] == expected
    status = run_cli("runs", "status", "ns-1", "-c", config, *extra, cwd=tmp_path, env=environ)
    assert status.returncode == 0 and "workflow ns-1: Pending" in status.stdout, status.stderr
