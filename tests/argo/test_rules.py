"""What Argo would rewrite or Kubernetes refuse is refused before rendering, located."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from conveyor.executors.argo.config import ArgoConfig
from conveyor.executors.argo.k8s import env_name_problem, image_problem
from conveyor.executors.argo.render import Files, render
from conveyor.spec.errors import SpecError
from conveyor.spec.load import load_pipeline
from support import run_cli

CONFIG = ArgoConfig(image="ghcr.io/example/conveyor:0.1")
FILES = Files(pipeline="pipeline.yaml", config="config.yaml")
ARGO = "executor: {type: argo, config: {image: ghcr.io/example/conveyor:0.1}}\n"

BRACED_STEP = """\
dag:
  start_at: "load {{workflow.name}}"
  steps:
    "load {{workflow.name}}":
      type: stub
      next: route
    route:
      type: conditional
      parameter: size
      branches:
        "big}}":
          start_at: s
          steps:
            s: {type: stub, next: success}
      next: success
"""

OVERRIDES = """\
dag:
  start_at: work
  steps:
    work:
      command: m.f
      overrides:
        argo:
          image: "Team/Model Image:1"
          env:
            GOOD_NAME: "1"
            "bad name": "2"
      next: success
"""


def write(tmp_path: Path, text: str, config: str = ARGO) -> Path:
    (tmp_path / "pipeline.yaml").write_text(text)
    (tmp_path / "config.yaml").write_text(config)
    return tmp_path / "pipeline.yaml"


def test_braces_in_step_names_and_branch_keys_are_refused_located(tmp_path: Path) -> None:
    loaded = load_pipeline(write(tmp_path, BRACED_STEP))
    with pytest.raises(SpecError) as caught:
        render(loaded, CONFIG, FILES)
    text = str(caught.value)
    assert caught.value.title == "cannot render for Argo" and len(caught.value.issues) == 2
    step, branch = caught.value.issues
    assert step.path == ("dag", "steps", "load {{workflow.name}}") and step.line == 4
    assert branch.path == ("dag", "steps", "route", "branches", "big}}") and branch.line == 11
    assert step.file is not None and step.file.endswith("pipeline.yaml")
    assert "Argo replaces" in text and "hint: rename it" in text


def test_validate_refuses_braces_only_for_argo(tmp_path: Path) -> None:
    write(tmp_path, BRACED_STEP)
    (tmp_path / "local.yaml").write_text("executor: {type: local}\n")
    local = run_cli("validate", "-f", "pipeline.yaml", "-c", "local.yaml", "--no-import", cwd=tmp_path)
    assert local.returncode == 0, local.stderr
    argo = run_cli("validate", "-f", "pipeline.yaml", "-c", "config.yaml", "--no-import", cwd=tmp_path)
    assert argo.returncode == 2
    assert 'pipeline.yaml:4: dag.steps."load {{workflow.name}}": step name' in argo.stderr
    assert 'pipeline.yaml:11: dag.steps.route.branches."big}}": branch key' in argo.stderr
    rendered = run_cli("render", "argo", "-f", "pipeline.yaml", "-c", "config.yaml", cwd=tmp_path)
    assert rendered.returncode == 2 and rendered.stdout == "" and "cannot render for Argo" in rendered.stderr


def test_step_overrides_with_bad_image_and_env_name_are_located(tmp_path: Path) -> None:
    loaded = load_pipeline(write(tmp_path, OVERRIDES))
    with pytest.raises(SpecError) as caught:
        render(loaded, CONFIG, FILES)
    by_path = {issue.path: issue for issue in caught.value.issues}
    base = ("dag", "steps", "work", "overrides", "argo")
    assert set(by_path) == {(*base, "image"), (*base, "env", "bad name")}
    assert by_path[(*base, "image")].line == 8 and "white space" in by_path[(*base, "image")].message
    assert by_path[(*base, "env", "bad name")].line == 11
    out = run_cli("render", "argo", "-f", "pipeline.yaml", "-c", "config.yaml", cwd=tmp_path)
    assert (
        out.returncode == 2 and 'pipeline.yaml:11: dag.steps.work.overrides.argo.env."bad name"' in out.stderr
    )


def test_config_env_names_and_image_are_refused_at_validate_and_render(tmp_path: Path) -> None:
    config = (
        "executor:\n  type: argo\n  config:\n    image: ghcr.io/Example/conveyor:0.1\n"
        "    env: {LOG_LEVEL: info, 2FAST: x}\n"
    )
    write(tmp_path, "dag: {start_at: a, steps: {a: {type: stub, next: success}}}\n", config)
    for command in (["validate", "--no-import"], ["render", "argo"]):
        out = run_cli(*command, "-f", "pipeline.yaml", "-c", "config.yaml", cwd=tmp_path)
        assert out.returncode == 2, out.stderr
        assert "config.yaml:4: executor.config.image" in out.stderr and "lower-case" in out.stderr
        assert "config.yaml:5: executor.config.env" in out.stderr and "'2FAST'" in out.stderr
        assert "LOG_LEVEL" not in out.stderr.split("2FAST")[0].split("executor.config.env")[-1]


@pytest.mark.parametrize(
    "image",
    [
        "ghcr.io/example/conveyor:0.1",
        "python",
        "library/python:3.12-slim",
        "localhost:5000/team/model_v2:latest",
        "registry.example.com/a/b/c@sha256:" + "0" * 64,
        "Registry.Example.com/team/x:V1",  # registry host and tag may have capitals
        "[::1]:5000/x",
    ],
)
def test_valid_images_pass(image: str) -> None:
    assert image_problem(image) is None
    assert ArgoConfig(image=image).image == image


@pytest.mark.parametrize(
    ("image", "why"),
    [
        ("my image:1", "white space"),
        ("ghcr.io/Team/x:1", "lower-case"),
        ("x:bad/tag", "expected"),
        ("x@sha256:abc", "expected"),
        ("x::1", "expected"),
        ("", "empty"),
    ],
)
def test_invalid_images_are_refused(image: str, why: str) -> None:
    problem = image_problem(image)
    assert problem is not None and why in problem
    with pytest.raises(ValidationError):
        ArgoConfig(image=image)


@pytest.mark.parametrize("name", ["LOG_LEVEL", "_x", "-dash", ".dot", "a.b-c_9"])
def test_env_names_kubernetes_takes(name: str) -> None:
    assert env_name_problem(name) is None


@pytest.mark.parametrize("name", ["9LIVES", "MY VAR", "A=B", "é", ".", "..", "..x", ""])
def test_env_names_kubernetes_refuses(name: str) -> None:
    assert env_name_problem(name) is not None
    with pytest.raises(ValidationError):
        ArgoConfig(image="x", env={name: "1"})
