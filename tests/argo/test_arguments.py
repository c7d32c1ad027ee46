"""A run's parameters as the Workflow's ``spec.arguments.parameters``: the typing rule reads
every value back as given, values Argo or Kubernetes would rewrite reach the run log
unchanged, a value changed in the submitted workflow (as ``argo submit -p`` does) is the
one the run uses, and what cannot be an argument is refused at render time (exit 2)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from argo.test_e2e import ARGO_CONFIG, render
from conveyor.executors.argo.arguments import argument_text
from conveyor.jsontypes import JSONValue
from conveyor.runlog.file import FileRunLogStore
from conveyor.spec.load import parse_params
from support import TASKS, run_cli
from support.argo_sim import Simulation
from support.fake_argo import FakeArgo

PIPELINE = """dag:
  start_at: say
  steps:
    say: {command: ctasks.shout, returns: [loud], next: total}
    total: {command: ctasks.add, returns: [c], next: success}
"""
#: Each is text Argo substitutes, or that Kubernetes expands in a container's environment.
HOSTILE = {
    "word": "{{workflow.name}} {{=sprig.upper('x')}} {{inputs.parameters.step}}",
    "a": 1,
    "b": 2,
    "note": "$(CONVEYOR_OUTPUTS_DIR) $$ ${HOME} {{",
    "nested": {"k": ["{{{workflow.uid}}}", "$x"], "deep": {"{{k}}": None}},
}


@pytest.mark.parametrize(
    "value",
    [
        "sentinel-2",
        "3",
        "yes",
        "null",
        "",
        "  padded ",
        "a: b",
        "- item",
        '"quoted"',
        "{{workflow.name}}",
        "{{{x}}}",
        "}}{{",
        "$(HOME) $$ $",
        "line\nbreak",
        "ünïcode ✓",
        3,
        -0.5,
        1e300,
        True,
        None,
        [1, "two", {"three": 3}],
        {"a": {"b": {"c": []}}},
        {"{{k}}": "$v"},
    ],
)
def test_argument_text_reads_back_as_the_value_and_holds_no_substitution(value: JSONValue) -> None:
    text = argument_text(value)
    assert text is not None
    assert "{{" not in text and "$" not in text, text
    back = parse_params([f"x={text}"])["x"]
    assert back == value and type(back) is type(value), (text, back)


def test_plain_values_read_plainly_in_the_argo_ui() -> None:
    assert argument_text("sentinel-2") == "sentinel-2"
    assert argument_text(3) == "3"
    assert argument_text("3") == '"3"'
    assert argument_text([1, 2]) == "[1, 2]"
    assert argument_text(float("nan")) is None


def _project(tmp_path: Path, params: dict[str, Any]) -> Path:
    (tmp_path / "pipeline.yaml").write_text(PIPELINE)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return tmp_path


def _arguments(doc: dict[str, Any]) -> dict[str, str]:
    spec = doc["spec"].get("workflowSpec", doc["spec"])
    return {p["name"]: p["value"] for p in spec["arguments"]["parameters"]}


def test_parameters_become_arguments_that_run_start_reads(tmp_path: Path) -> None:
    doc = render(_project(tmp_path, HOSTILE))
    arguments = _arguments(doc)
    assert list(arguments) == ["run_id", *HOSTILE]
    assert arguments["a"] == "1" and arguments["run_id"] == "{{workflow.name}}"
    start = next(t for t in doc["spec"]["templates"] if t["name"] == "run-start")
    env = start["container"]["env"]
    assert env[: len(HOSTILE)] == [
        {"name": f"CONVEYOR_PRM_{n}", "value": f"{{{{workflow.parameters.{n}}}}}"} for n in HOSTILE
    ]
    assert "--parameters-file" not in start["container"]["args"]
    others = [t for t in doc["spec"]["templates"] if "container" in t and t["name"] != "run-start"]
    assert others and not any("CONVEYOR_PRM_" in str(t["container"]["env"]) for t in others)


@pytest.mark.parametrize("flag", ["--template", None])
def test_a_workflow_template_and_a_cron_workflow_get_the_same_arguments(
    tmp_path: Path, flag: str | None
) -> None:
    where = _project(tmp_path, {"word": "hi", "a": 1, "b": 2})
    config = ARGO_CONFIG if flag else ARGO_CONFIG.replace("image:", "schedule: '0 2 * * *'\n    image:")
    (where / "argo.yaml").write_text(config)
    out = run_cli(
        "render", "argo", "-f", "pipeline.yaml", "-c", "argo.yaml", "-p", "params.yaml", *([flag] if flag else []),
        "--validate", cwd=where,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    doc = yaml.safe_load(out.stdout)
    assert doc["kind"] == ("WorkflowTemplate" if flag else "CronWorkflow")
    assert _arguments(doc) == {"run_id": "{{workflow.name}}", "word": "hi", "a": "1", "b": "2"}


def _simulate(where: Path, doc: dict[str, Any], run_id: str) -> Any:
    sim = Simulation(doc, where, env={"PYTHONPATH": str(TASKS)})
    assert sim.run(run_id) == "Succeeded", [(p.template, p.returncode) for p in sim.pods]
    return FileRunLogStore(str(where / ".conveyor/runs")).load(run_id).run


def test_values_argo_would_substitute_reach_the_run_log_unchanged(tmp_path: Path) -> None:
    where = _project(tmp_path, HOSTILE)
    run = _simulate(where, render(where), "argo-run")
    assert run.initial_parameters == HOSTILE
    assert run.final_parameters["loud"] == HOSTILE["word"].upper()  # type: ignore[union-attr]
    assert run.final_parameters["c"] == 3


def test_a_value_changed_at_submit_time_is_the_one_the_run_uses(tmp_path: Path) -> None:
    where = _project(tmp_path, {"word": "default", "a": 1, "b": 2})
    doc = render(where)
    for argument in doc["spec"]["arguments"]["parameters"]:  # what `argo submit -p` does
        argument["value"] = {"word": "changed", "a": "40"}.get(argument["name"], argument["value"])
    run = _simulate(where, doc, "argo-run")
    assert run.initial_parameters == {"word": "changed", "a": 40, "b": 2}
    assert run.final_parameters["loud"] == "CHANGED" and run.final_parameters["c"] == 42


@pytest.mark.parametrize(
    ("params", "env", "says"),
    [
        ({"learning rate": 0.1}, None, "Argo refuses this parameter name"),
        ({"a.b": 1}, None, "Argo refuses this parameter name"),
        ({"run_id": "x"}, None, "'run_id' is the argument conveyor gives the run id"),
        ({"big": "x" * (130 * 1024)}, None, "too large for an Argo argument"),
        ({f"p{i}": "x" * (100 * 1024) for i in range(6)}, None, "too large together"),
        ({"word": "hi"}, "CONVEYOR_PRM_word", "would hide the argument"),
    ],
    ids=["space", "dot", "run_id", "one-too-large", "all-too-large", "env-collision"],
)
def test_what_cannot_be_an_argument_is_refused_at_render_time(
    tmp_path: Path, params: dict[str, Any], env: str | None, says: str
) -> None:
    where = _project(tmp_path, params)
    config = ARGO_CONFIG if env is None else ARGO_CONFIG.replace("image:", f"env: {{{env}: x}}\n    image:")
    (where / "argo.yaml").write_text(config)
    out = run_cli("render", "argo", "-f", "pipeline.yaml", "-c", "argo.yaml", "-p", "params.yaml", cwd=where)
    assert out.returncode == 2, out.stderr
    assert says in out.stderr and "params.yaml" in out.stderr and "Traceback" not in out.stderr
    assert "expected" in out.stderr and "hint:" in out.stderr


@pytest.fixture
def argo() -> Iterator[FakeArgo]:
    with FakeArgo() as fake:
        yield fake


def test_submit_keeps_the_arguments_and_sets_the_run_id(tmp_path: Path, argo: FakeArgo) -> None:
    where = _project(tmp_path, {"word": "hi", "a": 1, "b": 2})
    (where / "argo.yaml").write_text(ARGO_CONFIG)
    out = run_cli(
        "submit", "--to", "argo", "-f", "pipeline.yaml", "-c", "argo.yaml", "-p", "params.yaml",
        "--run-id", "Run_7", cwd=where, env={"ARGO_SERVER": argo.url, "ARGO_TOKEN": "secret-token"},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    (workflow,) = argo.workflows.values()
    assert _arguments(workflow) == {"run_id": "Run_7", "word": "hi", "a": "1", "b": "2"}


def test_a_parameters_file_the_pods_read_is_under_the_arguments(tmp_path: Path) -> None:
    where = _project(tmp_path, {"word": "argument"})
    (where / "large.yaml").write_text("word: file\na: 1\nb: 2\n")
    (where / "argo.yaml").write_text(ARGO_CONFIG.replace("image:", "parameters_file: large.yaml\n    image:"))
    out = run_cli("render", "argo", "-f", "pipeline.yaml", "-c", "argo.yaml", "-p", "params.yaml", cwd=where)
    assert out.returncode == 0, out.stderr
    run = _simulate(where, yaml.safe_load(out.stdout), "argo-run")
    assert run.initial_parameters == {"word": "argument", "a": 1, "b": 2}
    assert run.final_parameters["loud"] == "ARGUMENT"
