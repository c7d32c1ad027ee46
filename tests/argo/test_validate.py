"""Argo's official schemas ship with conveyor: rendered manifests are checked against them,
by the tests and by ``conveyor render argo --validate``, with errors located in the manifest."""

from __future__ import annotations

import copy
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from conveyor.executors.argo.config import ArgoConfig
from conveyor.executors.argo.render import Files, render
from conveyor.executors.argo.validate import CRD_SCHEMA, JSON_SCHEMA, manifest_issues
from conveyor.spec.errors import format_path
from conveyor.spec.load import load_pipeline
from support import ROOT, run_cli

CONFIG = ArgoConfig(image="ghcr.io/example/conveyor:0.1")


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    """A valid Workflow with a DAG (on_failure: a task that depends on another)."""
    doc = render(load_pipeline(ROOT / "examples/on_failure/pipeline.yaml"), CONFIG, Files("p.yaml", "c.yaml"))
    assert manifest_issues(doc) == []
    return doc


def problems(doc: dict[str, Any]) -> dict[str, str]:
    return {format_path(issue.path): issue.message for issue in manifest_issues(doc)}


def dag_of(doc: dict[str, Any]) -> tuple[int, list[dict[str, Any]]]:
    index = next(i for i, t in enumerate(doc["spec"]["templates"]) if "dag" in t)
    return index, doc["spec"]["templates"][index]["dag"]["tasks"]


def test_the_schemas_ship_inside_the_package_and_say_where_they_come_from() -> None:
    package = ROOT / "src" / "conveyor"
    assert JSON_SCHEMA.parent == package / "executors" / "argo" / "schemas"
    assert json.loads(JSON_SCHEMA.read_text())["definitions"]["io.argoproj.workflow.v1alpha1.Workflow"]
    assert json.loads(CRD_SCHEMA.read_text())["properties"]["spec"]
    notice = (JSON_SCHEMA.parent / "README.md").read_text()
    assert "argoproj/argo-workflows" in notice and "v4.1.2" in notice
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "executors/argo/schemas/*.json" in pyproject["tool"]["setuptools"]["package-data"]["conveyor"]
    assert any(
        need.startswith("jsonschema") for need in pyproject["project"]["optional-dependencies"]["argo"]
    )


def test_a_misspelt_key_is_found_though_the_published_schema_allows_any(workflow: dict[str, Any]) -> None:
    doc = copy.deepcopy(workflow)
    index, tasks = dag_of(doc)
    tasks[1]["dependson"] = tasks[1].pop("depends")
    assert problems(doc) == {
        f"spec.templates[{index}].dag.tasks[1]": "Additional properties are not allowed ('dependson' was unexpected)"
    }


def test_the_crd_rules_apply_to_workflows(workflow: dict[str, Any]) -> None:
    doc = copy.deepcopy(workflow)
    doc["spec"]["parallelism"] = 0
    doc["spec"]["templates"][0]["name"] = "-starts-with-a-dash"
    found = problems(doc)
    assert found["spec.parallelism"] == "0 is less than the minimum of 1"
    assert "does not match '^[a-zA-Z0-9][-a-zA-Z0-9]*$'" in found["spec.templates[0].name"]


def test_references_that_name_nothing_are_found(workflow: dict[str, Any]) -> None:
    doc = copy.deepcopy(workflow)
    index, tasks = dag_of(doc)
    doc["spec"]["entrypoint"] = "nowhere"
    tasks[0]["template"] = "missing"
    doc["spec"]["templates"].append(copy.deepcopy(doc["spec"]["templates"][index]))
    found = problems(doc)
    assert found["spec.entrypoint"] == "no template is named 'nowhere'"
    assert found[f"spec.templates[{index}].dag.tasks[0].template"] == "no template is named 'missing'"
    assert (
        found["spec.templates"]
        == f"template names used more than once: {doc['spec']['templates'][index]['name']}"
    )


def test_something_else_than_an_argo_manifest_is_said_to_be_so() -> None:
    (issue,) = manifest_issues({"kind": "Pod"}, "x.yaml")
    assert issue.render().startswith("x.yaml: kind: not an Argo manifest")
    assert "found 'Pod'" in issue.render()


ARGO_CONFIG = """executor:
  type: argo
  config:
    image: ghcr.io/example/conveyor:0.1
    tolerations: [{key: batch, TOLERATION}]
"""


def test_render_validate_writes_a_valid_manifest(tmp_path: Path) -> None:
    (tmp_path / "argo.yaml").write_text(ARGO_CONFIG.replace("TOLERATION", "operator: Exists"))
    pipeline = ROOT / "examples/parallel/pipeline.yaml"
    for extra in ([], ["--template"]):
        out = run_cli(
            "render",
            "argo",
            "--validate",
            "-f",
            str(pipeline),
            "-c",
            "argo.yaml",
            "-o",
            "wf.yaml",
            *extra,
            cwd=tmp_path,
        )
        assert out.returncode == 0, out.stderr
        doc = yaml.safe_load((tmp_path / "wf.yaml").read_text())
        assert doc["kind"] == ("WorkflowTemplate" if extra else "Workflow") and manifest_issues(doc) == []


def test_render_validate_refuses_an_invalid_manifest_with_located_errors(tmp_path: Path) -> None:
    (tmp_path / "argo.yaml").write_text(ARGO_CONFIG.replace("TOLERATION", "operater: Exists"))
    pipeline = ROOT / "examples/hello_world/pipeline.yaml"
    out = run_cli(
        "render", "argo", "--validate", "-f", str(pipeline), "-c", "argo.yaml", "-o", "wf.yaml", cwd=tmp_path
    )
    assert out.returncode == 2 and out.stdout == ""
    assert not (tmp_path / "wf.yaml").exists()
    lines = out.stderr.splitlines()
    assert lines[0].startswith("the rendered Workflow does not pass Argo's schemas") and lines[0].endswith(
        "1 problem"
    )
    assert lines[1].startswith(f"{pipeline} as a Workflow: spec.templates[")
    assert lines[1].endswith(
        "].tolerations[0]: Additional properties are not allowed ('operater' was unexpected)"
    )
    assert lines[2].strip().startswith("hint: the value comes from the run config")
    # Without --validate the same manifest is written: the check is the flag's doing.
    plain = run_cli("render", "argo", "-f", str(pipeline), "-c", "argo.yaml", "-o", "wf.yaml", cwd=tmp_path)
    assert plain.returncode == 0 and (tmp_path / "wf.yaml").exists()


def test_parts_of_the_wrong_shape_are_reported_not_a_crash(workflow: dict[str, Any]) -> None:
    """A manifest read from a file may hold a string where a step, a DAG or a spec belongs:
    the schemas report each, and the reference checks skip what holds no names."""
    doc = copy.deepcopy(workflow)
    doc["spec"]["templates"].append({"name": "odd", "steps": [["not-a-step"]], "dag": "not-a-dag"})
    at = f"spec.templates[{len(doc['spec']['templates']) - 1}]"
    assert problems(doc) == {
        f"{at}.dag": "'not-a-dag' is not of type 'object'",
        f"{at}.steps[0][0]": "'not-a-step' is not of type 'object'",
        at: "a template has one type, this one has 2: dag, steps",
    }
    cron = {"apiVersion": "argoproj.io/v1alpha1", "kind": "CronWorkflow", "metadata": {}, "spec": "nothing"}
    assert problems(cron) == {"spec": "'nothing' is not of type 'object'"}
