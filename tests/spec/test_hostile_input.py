"""Whatever a user types or a file holds: a located message and a non-zero exit, never a
traceback; what validates, runs (or fails cleanly)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conveyor.spec.errors import SpecError
from conveyor.spec.load import load_parameters, load_pipeline_text
from conveyor.spec.yamlload import MAX_DEPTH, load_yaml_text
from support import TASKS, run_cli

OK = "dag:\n  start_at: a\n  steps:\n    a: {type: stub, next: success}\n"


def nested_parallel(levels: int) -> str:
    def graph(depth: int, indent: str) -> list[str]:
        lines = [f"{indent}start_at: s", f"{indent}steps:"]
        if depth == 0:
            return [*lines, f"{indent}  s: {{type: stub, next: success}}"]
        lines += [f"{indent}  s:", f"{indent}    type: parallel", f"{indent}    next: success"]
        lines += [f"{indent}    branches:", f"{indent}      b:"]
        return lines + graph(depth - 1, indent + "        ")

    return "\n".join(["dag:", *graph(levels, "  ")]) + "\n"


@pytest.mark.parametrize("levels", [20, 150])
def test_validate_and_execute_agree_on_deep_nesting(tmp_path: Path, levels: int) -> None:
    (tmp_path / "deep.yaml").write_text(nested_parallel(levels))
    checked = run_cli("validate", "-f", "deep.yaml", cwd=tmp_path)
    ran = run_cli("execute", "-q", "-f", "deep.yaml", cwd=tmp_path)
    if checked.returncode == 0:
        assert ran.returncode == 0, ran.stderr
    else:
        assert checked.returncode == ran.returncode == 2
        assert f"at most {MAX_DEPTH} levels" in checked.stderr and "deep.yaml:" in checked.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "a: !!python/name:os.system x\n",
            "YAML tag 'tag:yaml.org,2002:python/name:os.system' is not allowed",
        ),
        ("a: !custom 3\n", "YAML tag '!custom' is not allowed"),
        ("a: !!int '3'\n", "YAML tag 'tag:yaml.org,2002:int' is not allowed"),
        ("a: &x [*x]\n", ""),  # a recursive alias: refused or loaded, never a crash
        ("[" * 5000 + "]" * 5000, "nesting depth"),
    ],
)
def test_tags_and_deep_documents_are_refused_with_location(text: str, message: str) -> None:
    try:
        load_yaml_text(text, file="t.yaml")
    except SpecError as exc:
        assert message in str(exc) and "t.yaml" in str(exc)
    else:
        assert message == ""


def test_scalars_follow_yaml_1_2_core() -> None:
    data = load_yaml_text(
        "a: yes\nb: on\nc: 2024-01-31\nd: true\ne: ~\nf: 0o17\ng: 0x1F\nh: 1_000\ni: .inf\nj: '3'\nk: !!str 4\n"
    ).data
    assert data["a"] == "yes" and data["b"] == "on" and data["c"] == "2024-01-31"
    assert data["d"] is True and data["e"] is None and data["f"] == 15 and data["g"] == 31
    assert data["h"] == "1_000" and data["i"] == float("inf") and data["j"] == "3" and data["k"] == "4"


def test_parameters_file_and_environment_share_one_rule(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text("flag: yes\nwhen: 2024-01-31\nn: 3\n")
    env = {"CONVEYOR_PRM_other": "yes", "CONVEYOR_PRM_list": "[1, 2]", "CONVEYOR_PRM_text": "a: b: c"}
    params = load_parameters(tmp_path / "p.yaml", env)
    assert params == {
        "flag": "yes",
        "when": "2024-01-31",
        "n": 3,
        "other": "yes",
        "list": [1, 2],
        "text": "a: b: c",
    }


def test_duplicate_keys_in_a_parameters_file_are_refused(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text("a: 1\na: 2\n")
    with pytest.raises(SpecError, match="duplicate key 'a'"):
        load_parameters(tmp_path / "p.yaml", {})


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ("{command: x.y, timeout_seconds: .inf, next: success}", "expected a finite number"),
        (
            "{command: x.y, retry: {attempts: 3, backoff_seconds: 1e308}, next: success}",
            "less than or equal to 86400",
        ),
        ("{command: x.y, timeout_seconds: .nan, next: success}", "expected a finite number"),
    ],
)
def test_infinities_and_huge_waits_are_refused(step: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        load_pipeline_text(f"dag:\n  start_at: a\n  steps:\n    a: {step}\n")


@pytest.mark.parametrize("name", ["success", "fail"])
def test_reserved_step_names_are_refused(name: str) -> None:
    text = f"dag:\n  start_at: {name}\n  steps:\n    {name}: {{command: x.y, next: success}}\n"
    with pytest.raises(SpecError, match=f"step name '{name}' is reserved"):
        load_pipeline_text(text, file="p.yaml")


def test_special_files_are_refused_not_read(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    for target in ("/dev/zero", str(tmp_path / "fifo"), str(tmp_path)):
        out = run_cli("validate", "-f", target, cwd=tmp_path, timeout=20)
        assert out.returncode == 2 and "not a regular file" in out.stderr, out.stderr


def test_every_bad_input_file_is_reported_at_once(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text("dag:\n  start_at: a\n  steps:\n    a: {command: x.y, next: nowhere}\n")
    (tmp_path / "c.yaml").write_text("executor: {type: local, config: {}}\nbogus: 1\n")
    (tmp_path / "params.yaml").write_text("x: 1\nx: 2\n")
    out = run_cli("execute", "-f", "p.yaml", "-c", "c.yaml", "-p", "params.yaml", cwd=tmp_path)
    assert out.returncode == 2
    for where in ("p.yaml:4", "c.yaml:2", "params.yaml:2"):
        assert where in out.stderr, out.stderr


def test_a_corrupt_run_record_is_reported_per_run(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(OK)
    (tmp_path / "c.yaml").write_text("run_log_store: {type: file, config: {path: runs}}\n")
    for run_id in ("good", "cut", "shape"):
        assert (
            run_cli(
                "execute", "-q", "-f", "p.yaml", "-c", "c.yaml", "--run-id", run_id, cwd=tmp_path
            ).returncode
            == 0
        )
    (tmp_path / "runs" / "cut" / "run.json").write_text('{"run_id": "cu')
    (tmp_path / "runs" / "shape" / "run.json").write_text(json.dumps([1, 2]))
    listed = run_cli("runs", "list", "-c", "c.yaml", cwd=tmp_path)
    assert listed.returncode == 0 and "good" in listed.stdout and "succeeded" in listed.stdout
    assert listed.stdout.count("unreadable run record") == 2
    shown = run_cli("runs", "show", "cut", "-c", "c.yaml", cwd=tmp_path)
    assert shown.returncode == 2 and "the record of run 'cut'" in shown.stderr


def test_a_profiles_file_of_the_wrong_shape_is_a_message(tmp_path: Path) -> None:
    config = tmp_path / "config"
    (config / "conveyor").mkdir(parents=True)
    for content in ("[]", '{"profiles": []}', '{"profiles": {"a": {"endpoint": 3}}}', "{"):
        (config / "conveyor" / "profiles.json").write_text(content)
        out = run_cli("runs", "list", cwd=tmp_path, env={"XDG_CONFIG_HOME": str(config)})
        assert out.returncode == 2 and "profiles.json" in out.stderr, (content, out.stderr)


def test_an_out_of_range_port_is_a_usage_error(tmp_path: Path) -> None:
    out = run_cli("server", "start", "--port", "99999", cwd=tmp_path)
    assert out.returncode == 2 and "65535" in out.stderr


def test_a_deeply_nested_return_fails_its_step_cleanly(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(
        "dag:\n  start_at: a\n  steps:\n    a: {command: ctasks.deep, returns: [v], next: success}\n"
    )
    out = run_cli("execute", "-f", "p.yaml", cwd=tmp_path, env={"PYTHONPATH": str(TASKS)})
    assert out.returncode == 1 and "nests deeper than 100 levels" in out.stderr + out.stdout


# --- the property: a located error or a valid pipeline, never an exception ---------------

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8),
    st.sampled_from(["task", "stub", "parallel", "map", "conditional", "success", "fail", "a", "b", "x.y"]),
)  # fmt: skip
KEYS = st.sampled_from(
    ["dag", "start_at", "steps", "type", "command", "next", "on_failure", "branches", "branch", "iterate_on",
     "iterate_as", "returns", "parameter", "a", "b", "catalog", "retry", "timeout_seconds", "partition"]
)  # fmt: skip
DOCS = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=30,
)
YAMLISH = st.text(
    alphabet=st.sampled_from(list("dag:start_steps{}[]-, \n'\"&*!<>#|.0123456789a")), max_size=200
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(DOCS)
def test_any_data_is_a_valid_pipeline_or_located_issues(doc: object) -> None:
    try:
        load_pipeline_text(json.dumps({"dag": doc} if not isinstance(doc, dict) else doc), file="fuzz.yaml")
    except SpecError as exc:
        assert exc.issues and all(issue.file == "fuzz.yaml" for issue in exc.issues)


@settings(max_examples=300, deadline=None)
@given(YAMLISH)
def test_any_text_is_a_valid_pipeline_or_located_issues(text: str) -> None:
    try:
        load_pipeline_text(text, file="fuzz.yaml")
    except SpecError as exc:
        assert exc.issues and str(exc)
