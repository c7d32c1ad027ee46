"""Rendered manifests: valid for Argo's schemas and Hera's models, stable, small, split."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from conveyor.executors.argo.config import ArgoConfig
from conveyor.executors.argo.names import Namer, sanitize
from conveyor.executors.argo.render import Files, RenderError, render
from conveyor.spec.load import load_pipeline_text
from support import ROOT, run_cli
from support.argo_schema import schema_errors

GOLDEN = Path(__file__).parent / "golden"
EXAMPLES = ["hello_world", "parameters", "parallel", "map_files", "on_failure", "conditional", "loop"]
CONFIG = ArgoConfig(
    image="ghcr.io/example/conveyor:0.1",
    namespace="pipelines",
    service_account="conveyor",
    pvcs=[{"claim": "conveyor-data", "mount_path": "/data"}],  # type: ignore[list-item]
    parallelism=8,
    ttl_seconds=3600,
    pod_gc="OnPodSuccess",
    active_deadline_seconds=7200,
    labels={"team": "geo"},
    env={"LOG_LEVEL": "info"},
    secrets={"API_KEY": {"name": "conveyor-secrets", "key": "api-key"}},  # type: ignore[dict-item]
    resources={"requests": {"cpu": "500m", "memory": "1Gi"}},  # type: ignore[arg-type]
    node_selector={"pool": "batch"},
    tolerations=[{"key": "batch", "operator": "Exists", "effect": "NoSchedule"}],
    image_pull_policy="IfNotPresent",
)
FILES = Files(pipeline="pipeline.yaml", config="/etc/conveyor/config.yaml")


def hera_check(doc: dict[str, Any]) -> None:
    from hera.workflows import models

    model = {
        "Workflow": models.Workflow,
        "CronWorkflow": models.CronWorkflow,
        "WorkflowTemplate": models.WorkflowTemplate,
    }[doc["kind"]]
    model.model_validate(doc)


def example_manifest(name: str, kind: str = "Workflow", config: ArgoConfig = CONFIG) -> dict[str, Any]:
    """An example's manifest, with its params.yaml (if any) as the workflow's arguments."""
    from conveyor.spec.load import load_parameters, load_pipeline

    params = ROOT / "examples" / name / "params.yaml"
    values = load_parameters(params, environ={}) if params.exists() else None
    return render(load_pipeline(ROOT / "examples" / name / "pipeline.yaml"), config, FILES, kind, values)


@pytest.mark.parametrize("name", EXAMPLES)
def test_examples_render_valid_manifests(name: str) -> None:
    doc = example_manifest(name)
    assert schema_errors(doc) == []
    hera_check(doc)


@pytest.mark.parametrize("kind", ["WorkflowTemplate", "CronWorkflow"])
def test_template_and_cron_kinds(kind: str) -> None:
    config = CONFIG.model_copy(update={"schedule": "0 2 * * *", "timezone": "UTC"})
    doc = example_manifest("map_files", kind, config)
    assert doc["kind"] == kind
    assert schema_errors(doc) == []
    hera_check(doc)
    if kind == "CronWorkflow":
        assert doc["spec"]["schedules"] == ["0 2 * * *"]


@pytest.mark.parametrize("name", EXAMPLES)
def test_golden_manifests(name: str) -> None:
    text = yaml.safe_dump(example_manifest(name), sort_keys=False, width=1000)
    golden = GOLDEN / f"{name}.yaml"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(text)
    assert text == golden.read_text(), "regenerate with UPDATE_GOLDEN=1 pytest tests/argo/test_render.py"


def test_render_is_stable() -> None:
    assert example_manifest("conditional") == example_manifest("conditional")


def test_mapping_details() -> None:
    text = """dag:
  start_at: "Load Data!"
  steps:
    "Load Data!":
      command: m.load
      retry: {attempts: 4, backoff_seconds: 2}
      timeout_seconds: 90.5
      overrides: {argo: {image: "gpu:1", resources: {limits: {nvidia.com/gpu: "1"}}}}
      next: fan
      on_failure: cleanup
    fan:
      type: map
      iterate_on: xs
      iterate_as: x
      branch: {start_at: t, steps: {t: {command: m.t, next: success}}}
      next: success
    cleanup: {command: m.c, next: fail}
"""
    doc = render(load_pipeline_text(text, "demo"), CONFIG, FILES)
    assert schema_errors(doc) == []
    templates = {t["name"]: t for t in doc["spec"]["templates"]}
    main = {t["name"]: t for t in templates["main"]["dag"]["tasks"]}
    load = next(t for n, t in main.items() if n.startswith("load-data"))
    assert load["depends"] == "run-start.Succeeded"
    assert load["arguments"]["parameters"] == [{"name": "step", "value": "Load Data!"}]
    custom = templates[load["template"]]
    assert custom["retryStrategy"] == {
        "limit": "3",
        "retryPolicy": "Always",
        "backoff": {"duration": "2s", "factor": "2"},
    }
    assert custom["activeDeadlineSeconds"] == 91
    assert custom["container"]["image"] == "gpu:1"
    assert custom["container"]["resources"]["limits"] == {"nvidia.com/gpu": "1"}
    assert main["cleanup"]["depends"] == f"({load['name']}.Failed || {load['name']}.Errored)"
    assert main["fan-fan-out"]["depends"] == f"{load['name']}.Succeeded"
    assert main["fan-items"]["withSequence"] == {"count": "{{tasks.fan-fan-out.outputs.parameters.count}}"}
    assert main["fan-items"]["arguments"]["parameters"][0]["value"] == "fan/{{item}}"
    assert main["end"]["depends"] == "fan-fan-in.Succeeded"
    assert main["fail"]["depends"] == "cleanup.Succeeded"
    step = templates["step"]["container"]
    assert step["args"][:4] == [
        "execute-single-node",
        "{{workflow.parameters.run_id}}",
        "{{inputs.parameters.step}}",
        "--file",
    ]
    assert {
        "name": "API_KEY",
        "valueFrom": {"secretKeyRef": {"name": "conveyor-secrets", "key": "api-key"}},
    } in step["env"]
    assert doc["spec"]["onExit"] == "exit-handler"
    assert doc["spec"]["podGC"] == {"strategy": "OnPodSuccess"} and doc["spec"]["parallelism"] == 8


def _map_pipeline() -> str:
    return """dag:
  start_at: fan
  steps:
    fan:
      type: map
      iterate_on: files
      iterate_as: file
      branch: {start_at: t, steps: {t: {command: m.t, next: success}}}
      next: success
"""


def test_map_manifest_size_does_not_depend_on_item_count(tmp_path: Path) -> None:
    (tmp_path / "pipeline.yaml").write_text(_map_pipeline())
    (tmp_path / "argo.yaml").write_text(
        "executor: {type: argo, config: {image: img}}\nrun_log_store: {type: file}\n"
    )
    # The items come from a parameters file the pods read, not from the workflow's arguments.
    (tmp_path / "pods.yaml").write_text(
        "executor: {type: argo, config: {image: img, parameters_file: params.yaml}}\n"
        "run_log_store: {type: file}\n"
    )
    sizes = []
    for count in (10, 50_000):
        (tmp_path / "params.yaml").write_text(yaml.safe_dump({"files": [f"f{i}.tif" for i in range(count)]}))
        out = run_cli("render", "argo", "-f", "pipeline.yaml", "-c", "pods.yaml", cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        sizes.append(len(out.stdout))
    assert sizes[0] == sizes[1] and sizes[0] < 10_000
    # As an argument, the list of 50,000 would not fit a pod's environment: refused, with the way.
    out = run_cli(
        "render", "argo", "-f", "pipeline.yaml", "-c", "argo.yaml", "-p", "params.yaml", cwd=tmp_path
    )
    assert out.returncode == 2 and "too large" in out.stderr and "parameters_file" in out.stderr


def test_long_chains_are_split_under_the_dag_limit() -> None:
    steps = [
        f"    s{i}: {{command: m.f, next: {'s' + str(i + 1) if i < 449 else 'success'}}}" for i in range(450)
    ]
    text = "dag:\n  start_at: s0\n  steps:\n" + "\n".join(steps) + "\n"
    doc = render(load_pipeline_text(text, "long"), CONFIG, FILES)
    assert schema_errors(doc) == []
    dags = [t for t in doc["spec"]["templates"] if "dag" in t]
    assert all(len(t["dag"]["tasks"]) <= 200 for t in dags)
    assert len(doc["spec"]["templates"]) <= 200
    main = dags[0]
    assert [t["name"] for t in main["dag"]["tasks"]] == ["part-1", "part-2", "part-3"]
    assert main["dag"]["tasks"][1]["depends"] == "part-1.Succeeded"


def test_unsplittable_graph_is_refused_with_a_reason() -> None:
    steps = [
        f"    s{i}: {{command: m.f, next: {'s' + str(i + 1) if i < 249 else 'success'}, on_failure: s249}}"
        for i in range(249)
    ]
    steps.append("    s249: {command: m.f, next: success}")
    text = "dag:\n  start_at: s0\n  steps:\n" + "\n".join(steps) + "\n"
    with pytest.raises(RenderError, match="over Argo's limit of 200"):
        render(load_pipeline_text(text, "tangled"), CONFIG, FILES)


def test_names_follow_argo_rules() -> None:
    assert sanitize("simple") == "simple"
    odd = sanitize("Load Data! (v2)")
    assert odd.startswith("load-data-v2-") and sanitize("Load Data! (v2)") == odd
    long = sanitize("x" * 300)
    assert len(long) <= 60
    namer = Namer()
    assert namer.name("a b") != namer.name("a-b")
    assert sanitize("1st") == "s-1st-" + sanitize("1st").rsplit("-", 1)[1]


def test_render_errors_are_clear(tmp_path: Path) -> None:
    (tmp_path / "pipeline.yaml").write_text(_map_pipeline())
    (tmp_path / "local.yaml").write_text("executor: {type: local}\n")
    out = run_cli("render", "argo", "-f", "pipeline.yaml", "-c", "local.yaml", cwd=tmp_path)
    assert out.returncode == 2 and "does not use the argo executor" in out.stderr
    (tmp_path / "bad.yaml").write_text("executor: {type: argo, config: {imag: x}}\n")
    out = run_cli("render", "argo", "-f", "pipeline.yaml", "-c", "bad.yaml", cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "image" in out.stderr and "imag" in out.stderr
    out = run_cli("execute", "-f", "pipeline.yaml", "-c", "bad.yaml", cwd=tmp_path)
    assert out.returncode == 2
