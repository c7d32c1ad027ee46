"""A step's ``overrides: {argo: NAME}`` takes the pod settings the run config defines under
``executor.config.overrides.NAME`` (runnable's habit): in YAML and from the SDK; a name the
config does not define is a located error listing the names it does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from ctasks import add, noop

from conveyor import Pipeline, PythonTask
from conveyor.executors.argo.config import ArgoConfig
from conveyor.executors.argo.render import Files, render
from conveyor.spec.errors import SpecError
from conveyor.spec.load import load_pipeline, load_pipeline_text
from support import ROOT, TASKS, run_cli
from support.argo_schema import schema_errors

FILES = Files(pipeline="pipeline.yaml", config="config.yaml")
CONFIG = """\
executor:
  type: argo
  config:
    image: ghcr.io/example/conveyor:0.1
    resources: {requests: {cpu: 250m}}
    overrides:
      smaller:
        resources: {limits: {cpu: "1", memory: 1Gi}}
      gpu:
        image: ghcr.io/example/conveyor-gpu:0.1
        node_selector: {pool: gpu}
"""
PIPELINE = """\
dag:
  start_at: prepare
  steps:
    prepare:
      command: ctasks.noop
      next: train
    train:
      command: ctasks.noop
      overrides: {argo: smaller, local-container: custom_docker_image}
      next: score
    score:
      command: ctasks.noop
      overrides: {argo: gpu}
      next: success
"""


def _argo(text: str = CONFIG) -> ArgoConfig:
    return ArgoConfig.model_validate(yaml.safe_load(text)["executor"]["config"])


def _containers(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each step's pod template, by the step name the DAG task passes it."""
    templates = {t["name"]: t for t in doc["spec"]["templates"]}
    out = {}
    for task in templates["main"]["dag"]["tasks"]:
        params = {p["name"]: p["value"] for p in task.get("arguments", {}).get("parameters", [])}
        if "step" in params:
            out[params["step"]] = templates[task["template"]]
    return out


def test_yaml_named_override_takes_the_configs_settings() -> None:
    doc = render(load_pipeline_text(PIPELINE, "named"), _argo(), FILES)
    assert schema_errors(doc) == []
    pods = _containers(doc)
    assert pods["prepare"]["container"]["resources"] == {"requests": {"cpu": "250m"}}
    assert pods["train"]["container"]["resources"] == {
        "requests": {"cpu": "250m"},
        "limits": {"cpu": "1", "memory": "1Gi"},
    }
    assert pods["train"]["container"]["image"] == "ghcr.io/example/conveyor:0.1"
    assert pods["score"]["container"]["image"] == "ghcr.io/example/conveyor-gpu:0.1"
    assert pods["score"]["nodeSelector"] == {"pool": "gpu"} and "nodeSelector" not in pods["train"]


def test_named_and_inline_overrides_with_the_same_settings_share_a_template() -> None:
    inline = PIPELINE.replace(
        "overrides: {argo: gpu}",
        "overrides: {argo: {resources: {limits: {cpu: '1', memory: 1Gi}}}}",
    )
    pods = _containers(render(load_pipeline_text(inline, "same"), _argo(), FILES))
    assert pods["train"]["name"] == pods["score"]["name"] != pods["prepare"]["name"]


def test_sdk_named_override_is_written_and_rendered(tmp_path: Path) -> None:
    pipeline = Pipeline(
        steps=[
            PythonTask(name="prepare", function=noop),
            PythonTask(
                name="train", function=noop, overrides={"argo": "smaller"}, terminate_with_success=True
            ),
        ]
    )
    pipeline.to_yaml(tmp_path / "pipeline.yaml")
    written = yaml.safe_load((tmp_path / "pipeline.yaml").read_text())
    assert written["dag"]["steps"]["train"]["overrides"] == {"argo": "smaller"}
    pods = _containers(render(load_pipeline(tmp_path / "pipeline.yaml"), _argo(), FILES))
    assert pods["train"]["container"]["resources"]["limits"] == {"cpu": "1", "memory": "1Gi"}
    assert "limits" not in pods["prepare"]["container"]["resources"]


def test_sdk_named_override_for_another_executor_runs_locally() -> None:
    pipeline = Pipeline(
        steps=[
            PythonTask(
                name="add",
                function=add,
                returns=["total"],
                overrides={"argo": "smaller", "local-container": "custom_docker_image"},
                terminate_with_success=True,
            )
        ]
    )
    result = pipeline.execute(parameters={"a": 2, "b": 3}, config={"run_log_store": {"type": "memory"}})
    assert result.status == "succeeded" and result.parameters["total"] == 5


def test_an_undefined_name_is_located_with_the_names_defined(tmp_path: Path) -> None:
    (tmp_path / "pipeline.yaml").write_text(PIPELINE.replace("argo: gpu", "argo: smal"))
    (tmp_path / "config.yaml").write_text(CONFIG)
    with pytest.raises(SpecError) as caught:
        render(load_pipeline(tmp_path / "pipeline.yaml"), _argo(), FILES)
    [issue] = caught.value.issues
    assert issue.path == ("dag", "steps", "score", "overrides", "argo") and issue.line == 13
    assert "'smal' is not defined" in issue.message and issue.found == "'smal'"
    assert issue.expected is not None and "'gpu', 'smaller'" in issue.expected
    assert issue.hint is not None and issue.hint.startswith("did you mean 'smaller'?")
    for command in (["validate", "--no-import"], ["render", "argo"]):
        out = run_cli(*command, "-f", "pipeline.yaml", "-c", "config.yaml", cwd=tmp_path)
        assert out.returncode == 2 and out.stdout == "", out.stderr
        assert "pipeline.yaml:13: dag.steps.score.overrides.argo: the override 'smal'" in out.stderr
        assert "did you mean 'smaller'?" in out.stderr


def test_a_config_without_overrides_says_it_defines_none() -> None:
    plain = _argo("executor: {type: argo, config: {image: ghcr.io/example/conveyor:0.1}}\n")
    with pytest.raises(SpecError) as caught:
        render(load_pipeline_text(PIPELINE, "named"), plain, FILES)
    assert [i.path[2] for i in caught.value.issues] == ["train", "score"]
    assert all("(the config defines none)" in str(i.expected) for i in caught.value.issues)


def test_a_local_run_ignores_argo_names(tmp_path: Path) -> None:
    (tmp_path / "pipeline.yaml").write_text(PIPELINE)
    out = run_cli(
        "execute", "-f", "pipeline.yaml", cwd=tmp_path, env={"PYTHONPATH": f"{ROOT / 'src'}:{TASKS}"}
    )
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize(("value", "found"), [("5", "found 5"), ('" "', "found ' '"), ("[a]", "found ['a']")])
def test_an_override_that_is_neither_settings_nor_a_name(tmp_path: Path, value: str, found: str) -> None:
    (tmp_path / "pipeline.yaml").write_text(PIPELINE.replace("argo: gpu", f"argo: {value}"))
    out = run_cli("validate", "--no-import", "-f", "pipeline.yaml", cwd=tmp_path)
    assert out.returncode == 2
    assert (
        "pipeline.yaml:13: dag.steps.score.overrides.argo: an override is the executor's settings"
        in out.stderr
    )
    assert found in out.stderr and out.stderr.count("overrides.argo") == 1


def test_bad_settings_under_a_name_are_refused_in_the_config(tmp_path: Path) -> None:
    (tmp_path / "pipeline.yaml").write_text(PIPELINE)
    (tmp_path / "config.yaml").write_text(CONFIG.replace("pool: gpu", "pool: gpu}\n        colour: {x: 1"))
    out = run_cli("render", "argo", "-f", "pipeline.yaml", "-c", "config.yaml", cwd=tmp_path)
    assert out.returncode == 2 and "executor.config.overrides.gpu.colour" in out.stderr, out.stderr


@pytest.mark.parametrize("override", ["tiny", "inline"])
def test_an_override_whose_limit_falls_below_the_defaults_request_is_refused(
    tmp_path: Path, override: str
) -> None:
    """The override's limits replace the defaults' and the defaults' requests stay: a memory
    request of 1Gi with a limit of 512Mi is a pod Kubernetes refuses, so render and validate
    say so, where the step names the override."""
    config = CONFIG.replace(
        "resources: {requests: {cpu: 250m}}", "resources: {requests: {cpu: 250m, memory: 1Gi}}"
    ).replace("      gpu:\n", "      tiny:\n        resources: {limits: {memory: 512Mi}}\n      gpu:\n")
    named = "argo: tiny" if override == "tiny" else "argo: {resources: {limits: {memory: 512Mi}}}"
    (tmp_path / "pipeline.yaml").write_text(PIPELINE.replace("argo: gpu", named))
    (tmp_path / "config.yaml").write_text(config)
    with pytest.raises(SpecError) as caught:
        render(load_pipeline(tmp_path / "pipeline.yaml"), _argo(config), FILES)
    [issue] = caught.value.issues
    assert issue.path == ("dag", "steps", "score", "overrides", "argo")
    assert "request memory 1Gi with a limit of 512Mi" in issue.message
    assert issue.hint is not None and "resources.requests.memory" in issue.hint
    for command in (["validate", "--no-import"], ["render", "argo"]):
        out = run_cli(*command, "-f", "pipeline.yaml", "-c", "config.yaml", cwd=tmp_path)
        assert out.returncode == 2 and "which Kubernetes refuses" in out.stderr, out.stderr
    # with its own request the same limit is fine (and a cpu request with no cpu limit is too)
    fixed = config.replace(
        "{limits: {memory: 512Mi}}", "{limits: {memory: 512Mi}, requests: {memory: 256Mi}}"
    )
    fixed_named = named.replace(
        "{limits: {memory: 512Mi}}", "{limits: {memory: 512Mi}, requests: {memory: 256Mi}}"
    )
    (tmp_path / "pipeline.yaml").write_text(PIPELINE.replace("argo: gpu", fixed_named))
    render(load_pipeline(tmp_path / "pipeline.yaml"), _argo(fixed), FILES)
