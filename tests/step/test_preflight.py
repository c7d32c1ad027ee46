"""Code references checked before anything runs: functions, reducers, notebooks, scripts,
and the arguments each function needs against what may reach its step."""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor.spec.errors import SpecError
from conveyor.spec.load import load_pipeline
from conveyor.step.preflight import Report, preflight, required_arguments, script_of

STEPS = """
from pydantic import BaseModel


LIMIT = 3


class Settings(BaseModel):
    rate: float


def load():
    return [1, 2, 3]


def train(rows, rate, epochs=3):
    return len(rows) * rate


def tune(settings: Settings, **rest):
    return settings.rate


def per_item(chunk, offset):
    return chunk + offset


def step_of_loop(i, total=0):
    return total + i, i >= 2


def either(size):
    return size


def anything(*args, **kwargs):
    return 1


def biggest(values):
    return max(values)


def broken():
    raise RuntimeError("not called by the checks")
"""


@pytest.fixture
def module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A module of step functions beside the pipeline, under a name of its own per test."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    name = "pf_" + tmp_path.name.replace("-", "_")
    (tmp_path / f"{name}.py").write_text(STEPS)
    monkeypatch.chdir(tmp_path)
    yield name
    sys.modules.pop(name, None)


def check(tmp_path: Path, pipeline: str, params: dict[str, Any] | None = None, known: bool = True) -> Report:
    (tmp_path / "pipeline.yaml").write_text(textwrap.dedent(pipeline))
    return preflight(load_pipeline(tmp_path / "pipeline.yaml"), params or {}, known=known, workdir=tmp_path)


def messages(report: Report) -> str:
    return "\n".join(issue.render() for issue in report.issues)


def test_a_valid_pipeline_with_every_scope_passes(tmp_path: Path, module: str) -> None:
    report = check(
        tmp_path,
        f"""
        dag:
          start_at: load
          steps:
            load: {{command: {module}.load, returns: [rows], next: train}}
            train: {{command: {module}.train, returns: [score], next: tune}}
            tune: {{command: {module}.tune, next: fan}}
            fan:
              type: map
              iterate_on: rows
              iterate_as: chunk
              reducer: {module}.biggest
              branch:
                start_at: item
                steps:
                  item: {{command: {module}.per_item, returns: [shifted], next: success}}
              next: again
            again:
              type: loop
              max_iterations: 3
              break_on: done
              index_as: i
              branch:
                start_at: body
                steps:
                  body: {{command: {module}.step_of_loop, returns: [total, done], next: success}}
              next: route
            route:
              type: conditional
              parameter: size
              branches:
                small:
                  start_at: s
                  steps:
                    s: {{command: {module}.either, next: success}}
                large:
                  start_at: l
                  steps:
                    l: {{command: {module}.anything, next: success}}
              next: success
        """,
        {"rate": 0.5, "settings": {"rate": 1.0}, "offset": 1, "size": 3},
    )
    assert report.issues == [] and report.notes == []


def test_a_typo_in_a_function_name_is_located_with_a_suggestion(tmp_path: Path, module: str) -> None:
    report = check(
        tmp_path,
        f"""
        dag:
          start_at: load
          steps:
            load: {{command: {module}.lod, next: success}}
        """,
    )
    [issue] = report.issues
    assert issue.path == ("dag", "steps", "load", "command") and issue.line == 5
    assert f"function '{module}.lod' does not exist" in issue.message and issue.hint == "did you mean 'load'?"
    with pytest.raises(SpecError) as caught:
        report.raise_errors()
    assert "pipeline.yaml:5: dag.steps.load.command" in str(caught.value)


def test_a_name_that_is_not_a_function(tmp_path: Path, module: str) -> None:
    report = check(
        tmp_path, f"dag: {{start_at: a, steps: {{a: {{command: {module}.LIMIT, next: success}}}}}}\n"
    )
    [issue] = report.issues
    assert issue.message == f"function '{module}.LIMIT' is not a function" and issue.found == "int"


def test_a_missing_module_and_a_bad_dotted_reducer(tmp_path: Path, module: str) -> None:
    report = check(
        tmp_path,
        f"""
        dag:
          start_at: fan
          steps:
            fan:
              type: map
              iterate_on: xs
              iterate_as: x
              reducer: {module}.bigest
              branch:
                start_at: w
                steps:
                  w: {{command: no_such_module_here.work, next: success}}
              next: success
        """,
        {"xs": [1]},
    )
    by_path = {issue.path: issue for issue in report.issues}
    work = by_path[("dag", "steps", "fan", "branch", "steps", "w", "command")]
    assert "cannot be imported" in work.message and "no_such_module_here" in work.message
    reducer = by_path[("dag", "steps", "fan", "reducer")]
    assert f"reducer '{module}.bigest' does not exist" in reducer.message
    assert reducer.hint == "did you mean 'biggest'?"


def test_a_module_failing_at_import_is_an_issue_not_a_crash(tmp_path: Path, module: str) -> None:
    name = module + "_bad"
    (tmp_path / f"{name}.py").write_text("raise ValueError('no config file')\n")
    report = check(tmp_path, f"dag: {{start_at: a, steps: {{a: {{command: {name}.f, next: success}}}}}}\n")
    sys.modules.pop(name, None)
    [issue] = report.issues
    assert "failed: ValueError: no config file" in issue.message


def test_missing_notebook_and_script(tmp_path: Path, module: str) -> None:
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "prepare.sh").write_text("echo hi\n")
    report = check(
        tmp_path,
        """
        dag:
          start_at: nb
          steps:
            nb: {command_type: notebook, command: notebooks/explore.ipynb, next: ok}
            ok: {command_type: shell, command: bash scripts/prepare.sh, next: typo}
            typo: {command_type: shell, command: ./scripts/prepar.sh --fast, next: tools}
            tools: {command_type: shell, command: "echo $HOME && ls", next: fetched}
            fetched:
              command_type: shell
              command: bash data/run.sh
              catalog: {get: ["data/*.sh"]}
              next: success
        """,
    )
    assert [issue.path[2] for issue in report.issues] == ["nb", "typo"]
    nb, typo = report.issues
    assert "notebook 'notebooks/explore.ipynb' does not exist" in nb.message
    assert "script './scripts/prepar.sh' does not exist" in typo.message
    assert typo.hint == "did you mean 'prepare.sh'?"


def test_a_required_argument_nothing_provides_names_who_could(tmp_path: Path, module: str) -> None:
    report = check(
        tmp_path,
        f"""
        dag:
          start_at: both
          steps:
            both:
              type: parallel
              branches:
                one:
                  start_at: load
                  steps:
                    load: {{command: {module}.load, returns: [rows], next: success}}
                two:
                  start_at: train
                  steps:
                    train: {{command: {module}.train, next: success}}
              next: later
            later: {{command: {module}.load, returns: [rate], next: success}}
        """,
        {"epochs": 2},
    )
    rate, rows = sorted(report.issues, key=lambda i: i.message)
    assert "needs parameter 'rate'" in rate.message and "before step 'both/two/train'" in rate.message
    assert rate.hint is not None and "'later' returns it but may not run before this step" in rate.hint
    assert "CONVEYOR_PRM_rate" in rate.hint
    # a sibling branch's returns are not visible to it: that branch's step is named
    assert "needs parameter 'rows'" in rows.message and rows.found == "parameters here: epochs"
    assert rows.hint is not None and "'both/one/load' returns it" in rows.hint


def test_did_you_mean_on_parameter_names(tmp_path: Path, module: str) -> None:
    report = check(
        tmp_path,
        f"""
        dag:
          start_at: load
          steps:
            load: {{command: {module}.load, returns: [row], next: train}}
            train: {{command: {module}.train, next: success}}
        """,
        {"rate": 1},
    )
    [issue] = report.issues
    assert issue.found == "parameters here: rate, row"
    assert issue.hint is not None and issue.hint.startswith("did you mean 'row'?")


def test_iterate_as_is_only_inside_its_map(tmp_path: Path, module: str) -> None:
    report = check(
        tmp_path,
        f"""
        dag:
          start_at: fan
          steps:
            fan:
              type: map
              iterate_on: xs
              iterate_as: chunk
              branch:
                start_at: w
                steps:
                  w: {{command: {module}.per_item, next: success}}
              next: after
            after: {{command: {module}.per_item, next: success}}
        """,
        {"xs": [1], "offset": 0},
    )
    [issue] = report.issues
    assert issue.path[:3] == ("dag", "steps", "after") and "'fan' sets it only inside its own branch" in str(
        issue.hint
    )


def test_a_later_loop_step_does_not_feed_the_first_iteration(tmp_path: Path, module: str) -> None:
    pipeline = f"""
        dag:
          start_at: again
          steps:
            again:
              type: loop
              max_iterations: 3
              break_on: done
              index_as: i
              branch:
                start_at: use
                steps:
                  use: {{command: {module}.either, next: make}}
                  make: {{command: {module}.load, returns: [size], next: success}}
              next: success
        """
    [issue] = check(tmp_path, pipeline).issues
    assert "needs parameter 'size'" in issue.message and "'again/make' returns it" in str(issue.hint)
    assert check(tmp_path, pipeline, {"size": 1}).issues == []


def test_steps_that_may_never_run_get_notes_not_errors(tmp_path: Path, module: str) -> None:
    report = check(
        tmp_path,
        f"""
        dag:
          start_at: risky
          steps:
            risky: {{command: {module}.load, next: route, on_failure: handler}}
            handler: {{command: {module}.either, next: fail}}
            route:
              type: conditional
              parameter: pick
              branches:
                a: {{start_at: s, steps: {{s: {{command: {module}.per_item, next: success}}}}}}
              next: success
        """,
        {"pick": "a"},
    )
    assert report.issues == []
    assert len(report.notes) == 3 and all("a run that takes this path fails there" in n for n in report.notes)
    assert any("step 'handler'" in n and "'size'" in n for n in report.notes)
    assert any("step 'route/a/s'" in n and "'chunk'" in n for n in report.notes)


def test_unknown_initial_parameters_make_notes_not_errors(tmp_path: Path, module: str) -> None:
    report = check(
        tmp_path,
        f"dag: {{start_at: a, steps: {{a: {{command: {module}.either, next: success}}}}}}\n",
        known=False,
    )
    assert report.issues == []
    assert (
        report.notes
        and "needs parameter 'size'" in report.notes[0]
        and "CONVEYOR_PRM_size" in report.notes[0]
    )


def test_required_arguments_follow_how_the_run_binds_them() -> None:
    def f(a, b=1, *args, c, d=2, **kwargs):  # type: ignore[no-untyped-def]
        return a

    assert required_arguments(f) == ["a", "c"]
    assert required_arguments(lambda *x: sum(x)) == []
    assert required_arguments(max) is None or isinstance(required_arguments(max), list)


@pytest.mark.parametrize(
    ("command", "script"),
    [
        ("bash scripts/run.sh", "scripts/run.sh"),
        ("./run.sh --fast", "./run.sh"),
        ("python tools/make.py x", "tools/make.py"),
        ("LEVEL=2 sh go.sh", "go.sh"),
        ("python -c 'print(1)'", None),
        ("echo hi", None),
        ("/usr/bin/env python x.py", None),
        ("bash $HOME/x.sh", None),
        ("bash 'unterminated", None),
        ("", None),
    ],
)
def test_script_of(command: str, script: str | None) -> None:
    assert script_of(command) == script


def test_declared_secrets_are_hidden_while_modules_import(
    tmp_path: Path, module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = module + "_env"
    (tmp_path / f"{name}.py").write_text(
        "import os\nSEEN = os.environ.get('PF_TOKEN')\n\ndef f():\n    return SEEN\n"
    )
    monkeypatch.setenv("PF_TOKEN", "s3cret")
    report = check(
        tmp_path,
        f"dag: {{start_at: a, steps: {{a: {{command: {name}.f, secrets: [PF_TOKEN], next: success}}}}}}\n",
    )
    imported = sys.modules.pop(name)
    assert report.issues == [] and imported.SEEN is None
    assert os.environ["PF_TOKEN"] == "s3cret"  # given back afterwards
