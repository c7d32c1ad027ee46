"""More of runnable's SDK conventions: scripts imported by a name that is no dotted path
(runnable's tests import ``examples.02-sequential.x``), ``argparse.Namespace`` parameters,
a mocked config with runnable's free keys, and ``$name`` variables in configs."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conveyor.spec.errors import SpecError
from conveyor.spec.load import load_config
from conveyor.step.params import bind_arguments

SCRIPT = """
import os

from conveyor import Conditional, Loop, Pipeline, PythonTask


def toss():
    return "heads"


def on_heads():
    with open("heads.txt", "w") as handle:
        handle.write("called")


def on_tails():
    raise AssertionError("tails")


def count(counter):
    return int(counter) >= 2


def main():
    choose = Conditional(
        name="choose", parameter="side",
        branches={
            "heads": PythonTask(name="heads", function=on_heads).as_pipeline(),
            "tails": PythonTask(name="tails", function=on_tails).as_pipeline(),
        },
    )
    loop = Loop(
        name="again", max_iterations=5, break_on="done", index_as="counter",
        branch=PythonTask(name="count", function=count, returns=["done"]).as_pipeline(),
    )
    pipeline = Pipeline(steps=[PythonTask(name="toss", function=toss, returns=["side"]), choose, loop])
    result = pipeline.execute(raise_on_error=False)
    print("STATUS", result.status, result.parameters.get("done"))
"""

DRIVER = """
import importlib
importlib.import_module("examples.02-sequential.flip").main()
"""


def _run(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    src = str(Path(__file__).resolve().parents[2] / "src")
    full = {**os.environ, "PYTHONPATH": os.pathsep.join([src, str(cwd)]), **(env or {})}
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=full, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("isolation", ["thread", "process"])
def test_script_imported_by_a_folder_name_that_is_no_identifier(tmp_path: Path, isolation: str) -> None:
    folder = tmp_path / "examples" / "02-sequential"
    folder.mkdir(parents=True)
    (tmp_path / "examples" / "__init__.py").write_text("")
    script = SCRIPT
    if isolation == "process":
        script = script.replace(
            "pipeline.execute(raise_on_error=False)",
            'pipeline.execute({"executor": {"type": "emulator"}}, raise_on_error=False)',
        )
    (folder / "flip.py").write_text(script)
    (tmp_path / "drive.py").write_text(DRIVER)
    proc = _run(tmp_path, "drive.py")
    assert proc.returncode == 0, proc.stderr[-3000:]
    # The conditional's branch and the loop's task were both found and run.
    assert "STATUS succeeded True" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert (tmp_path / "heads.txt").read_text() == "called"


def test_namespace_gets_the_parameters_no_argument_names() -> None:
    def train(integer: int, args: argparse.Namespace) -> tuple[int, argparse.Namespace]:
        return integer, args

    kwargs = bind_arguments(train, {"integer": 1, "floater": 3.14, "stringer": "hello"})
    assert kwargs["integer"] == 1
    assert vars(kwargs["args"]) == {"floater": 3.14, "stringer": "hello"}


def test_namespace_in_a_pipeline(tmp_path: Path) -> None:
    (tmp_path / "steps.py").write_text(
        "import argparse\n"
        "def check(integer: int, args: argparse.Namespace):\n"
        "    return integer + args.extra\n"
    )
    (tmp_path / "run.py").write_text(
        "from conveyor import Pipeline, PythonTask\n"
        "from steps import check\n"
        "r = Pipeline(steps=[PythonTask(name='c', function=check, returns=['total'])])"
        ".execute(parameters={'integer': 1, 'extra': 41})\n"
        "print('TOTAL', r.parameters['total'])\n"
    )
    proc = _run(tmp_path, "run.py")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "TOTAL 42" in proc.stdout


def test_mocked_config_takes_runnable_free_keys(tmp_path: Path) -> None:
    path = tmp_path / "default.yaml"
    path.write_text("executor:\n  type: mocked\n  config:\n    what: I am allowed\n")
    config = load_config(path)
    assert config.executor.type == "mocked"
    assert "what" not in (config.executor.config or {})
    assert any("what" in note for note in config.notes)


def test_mocked_patches_keep_their_dollars(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("x", raising=False)
    path = tmp_path / "mocked.yaml"
    path.write_text("executor:\n  type: mocked\n  config:\n    patches:\n      a: {command: echo $x}\n")
    config = load_config(path)
    assert config.executor.config["patches"]["a"]["command"] == "echo $x"


ARGO = """\
pipeline-executor:
  type: argo
  config:
    pvc_for_runnable: runnable
    defaults:
      image: $docker_image
      env:
        - name: WHERE
          value: "${region}-cost-$$5"
"""


def test_config_variables_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "argo.yaml"
    path.write_text(ARGO)
    monkeypatch.setenv("RUNNABLE_VAR_docker_image", "ghcr.io/team/img:1.0")
    monkeypatch.setenv("region", "eu")
    config = load_config(path).executor.config
    assert config["image"] == "ghcr.io/team/img:1.0"
    assert config["env"] == {"WHERE": "eu-cost-$5"}


def test_missing_config_variable_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "argo.yaml"
    path.write_text(ARGO)
    for name in ("docker_image", "RUNNABLE_VAR_docker_image", "CONVEYOR_VAR_docker_image"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("region", "eu")
    with pytest.raises(SpecError) as info:
        load_config(path)
    text = str(info.value)
    assert "docker_image" in text and "argo.yaml:6" in text


def test_missing_config_variable_exits_2(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text("dag:\n  start_at: s\n  steps:\n    s: {type: stub}\n")
    (tmp_path / "c.yaml").write_text("run_log_store:\n  type: file-system\n  config: {log_folder: $logs}\n")
    env = {k: v for k, v in os.environ.items() if "logs" not in k}
    src = str(Path(__file__).resolve().parents[2] / "src")
    proc = subprocess.run(
        [sys.executable, "-m", "conveyor.cli", "execute", "-f", "p.yaml", "-c", "c.yaml"],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": src},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "'logs'" in proc.stderr and "Traceback" not in proc.stderr
