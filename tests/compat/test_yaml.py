"""runnable's YAML pipelines run unchanged: anchored branch definitions, stubs with any keys,
lambda and star-args reducers, notebooks with numpy/pandas/pydantic values, catalog puts of
failed attempts, and exit codes 0 (succeeded), 1 (failed), 2 (refused)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.runlog.base import RunLog
from conveyor.runlog.file import FileRunLogStore
from support import ROOT, TASKS, run_cli

HERE = Path(__file__).parent
ENV = {"PYTHONPATH": f"{HERE}:{TASKS}"}
CONFIG = "run_log_store: {type: file}\ncatalog: {type: file}\n"

ANCHORED = """branch: &branch
  start_at: square
  steps:
    square:
      type: task
      command: rtasks.square
      returns:
        - name: squares
      next: success
    success:
      type: success
    fail:
      type: fail

dag:
  description: a map whose branch is defined once above and reused by alias
  start_at: placeholder
  steps:
    placeholder:
      type: stub
      command_type: python
      command: not.written.yet
      returns: [anything]
      some_future_key: {nested: true}
      next: fan
    fan:
      type: map
      iterate_on: xs
      iterate_as: x
      reducer: "lambda *x: max(x)"
      branch: *branch
      next: again
    again:
      type: map
      iterate_on: xs
      iterate_as: x
      reducer: rtasks.biggest
      branch: *branch
      next: success
    success:
      type: success
    fail:
      type: fail
"""


def execute(where: Path, text: str, *extra: str, params: str = "xs: [1, 3, 2]\n") -> tuple[int, str]:
    (where / "pipeline.yaml").write_text(text)
    (where / "params.yaml").write_text(params)
    (where / "config.yaml").write_text(CONFIG)
    args = ["execute", "-f", "pipeline.yaml", "-c", "config.yaml", "-p", "params.yaml", *extra]
    out = run_cli(*args, cwd=where, env=ENV)
    return out.returncode, out.stdout + out.stderr


def log(where: Path, run_id: str) -> RunLog:
    return FileRunLogStore(str(where / ".conveyor/runs")).load(run_id)


def test_anchored_branches_stub_keys_and_reducers(tmp_path: Path) -> None:
    code, output = execute(tmp_path, ANCHORED, "--run-id", "r1")
    assert code == 0, output
    assert log(tmp_path, "r1").run.final_parameters["squares"] == 9  # both reducers: max of 1, 9, 4
    stub = log(tmp_path, "r1").steps[("placeholder",)]
    assert stub.info["keys"]["some_future_key"] == {"nested": True}  # kept, not checked


def test_unknown_top_level_key_without_anchor_is_still_refused(tmp_path: Path) -> None:
    text = """brnach:
  start_at: s
  steps: {s: {type: stub, next: success}}
dag:
  start_at: s
  steps: {s: {type: stub, next: success}}
"""
    code, output = execute(tmp_path, text)
    assert code == 2 and "unknown key 'brnach'" in output and "branch" not in output.split("brnach", 1)[0]


def test_exit_codes_follow_the_run(tmp_path: Path) -> None:
    failing = """dag:
  start_at: boom
  steps:
    boom: {type: task, command: rtasks.write_then_fail, catalog: {put: [partial.csv, "never-*.txt"]}, next: success}
"""
    code, output = execute(tmp_path, failing, "--run-id", "f1")
    assert code == 1, output
    attempt = log(tmp_path, "f1").steps[("boom",)].attempts[0]
    # the failed attempt's partial output is stored and recorded; the unmatched glob is no second error
    assert [e["name"] for e in attempt.catalog] == ["partial.csv"]
    assert attempt.error == "RuntimeError: failed after writing partial.csv"
    assert (tmp_path / ".conveyor/catalog/f1/partial.csv").read_text() == "a,b\n1,2\n"
    code, output = execute(tmp_path, "dag: {start_at: x, steps: {x: {type: nothing}}}\n")
    assert code == 2 and "unknown step type 'nothing'" in output


def test_notebook_takes_any_json_and_pydantic_returns_numpy_and_pandas(tmp_path: Path) -> None:
    pytest.importorskip("nbclient", reason="the notebook extra is not installed")
    pytest.importorskip("pandas")
    import nbformat

    nb = nbformat.v4.new_notebook()
    tagged = nbformat.v4.new_code_cell("settings = None\nitems = None\nflag = None")
    tagged.metadata["tags"] = ["parameters"]
    nb.cells = [
        tagged,
        nbformat.v4.new_code_cell(
            "import numpy as np, pandas as pd\n"
            "scores = np.array([1.5, 2.5]) * settings['rate']\n"
            "best = np.float64(scores.max())\n"
            "frame = pd.DataFrame({'item': items, 'flag': [flag] * len(items)})\n"
            "count = int(len(frame))"
        ),
    ]
    nbformat.write(nb, str(tmp_path / "analysis.ipynb"))
    text = """dag:
  start_at: settings
  steps:
    settings: {type: task, command: rtasks.make_settings, returns: [settings], next: notebook}
    notebook:
      type: task
      command_type: notebook
      command: analysis.ipynb
      returns:
        - name: scores
          kind: object
        - name: best
        - name: frame
          kind: object
        - name: count
      next: use
    use: {type: task, command: rtasks.take_settings, returns: [doubled], next: success}
"""
    code, output = execute(tmp_path, text, "--run-id", "nb", params="items: [a, b]\nflag: true\n")
    assert code == 0, output
    final = log(tmp_path, "nb").run.final_parameters
    assert final["best"] == 1.25 and final["count"] == 2 and final["doubled"] == 1.0


def test_runnable_examples_folder_layout_runs(tmp_path: Path) -> None:
    """A runnable project keeps functions under examples/...: dotted commands from the root."""
    where = tmp_path / "project"
    (where / "examples" / "common").mkdir(parents=True)
    (where / "examples" / "__init__.py").write_text("")
    (where / "examples" / "common" / "__init__.py").write_text("")
    (where / "examples" / "common" / "functions.py").write_text((HERE / "rtasks.py").read_text())
    text = """dag:
  start_at: hello
  steps:
    hello:
      type: task
      command: examples.common.functions.say
      returns: [word]
      next: success
    success:
      type: success
    fail:
      type: fail
"""
    code, output = execute(where, text)
    assert code == 0, output
    assert ROOT.exists()
