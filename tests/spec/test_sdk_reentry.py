"""An SDK script without a main guard runs its pipeline once per ``execute()`` call.

Its steps import the script by its file's name, and the import runs the module-level
``execute()`` again: conveyor notices (one line on the step's stderr, kept in its log) and runs
nothing twice, whether the steps run in threads of the script's process or in processes of
their own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conveyor.runlog.file import FileRunLogStore

SCRIPT = """
import os
from pathlib import Path

from conveyor import Pipeline, PythonTask


def count(step):
    with open(os.path.join(os.environ["COUNTS"], step), "a") as handle:
        handle.write("ran\\n")


def first():
    count("first")
    return 2


def second(x):
    count("second")
    return x * 10


pipeline = Pipeline(
    steps=[PythonTask(first, returns=["x"]), PythonTask(second, returns=["y"])]
)
result = pipeline.execute(config=CONFIG)
print(f"result {result.status} y={result.parameters.get('y')}")
"""


def _run(workdir: Path, isolation: str, name: str = "script.py") -> subprocess.CompletedProcess[str]:
    config = {"executor": {"type": "local", "config": {"isolation": isolation}}}
    (workdir / name).write_text(SCRIPT.replace("CONFIG", repr(config)))
    counts = workdir / "counts"
    counts.mkdir()
    env = {**os.environ, "COUNTS": str(counts), "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run(
        [sys.executable, name], cwd=workdir, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("isolation", ["thread", "process"])
def test_script_without_main_guard_runs_its_pipeline_once(tmp_path: Path, isolation: str) -> None:
    done = _run(tmp_path, isolation)
    assert done.returncode == 0, done.stderr
    # each step ran exactly once
    assert (tmp_path / "counts" / "first").read_text() == "ran\n"
    assert (tmp_path / "counts" / "second").read_text() == "ran\n"
    # exactly one run recorded (in the default store, under the working directory)
    store = FileRunLogStore(str(tmp_path / ".conveyor" / "runs"))
    runs = store.list_runs(10)
    assert len(runs) == 1 and runs[0].status == "succeeded"
    # the script's own call reports the run; the import's call, in the step's log, says it
    # did not run again and returns a run still running
    assert "result succeeded y=20" in done.stdout
    log = store.load(runs[0].run_id)
    first = store.read_log(str(log.steps[("first",)].attempts[0].log))
    assert (
        f"execute() called again by the import of module 'script' during run {runs[0].run_id}: "
        "not run again" in first
    )
    assert "result running y=None" in first


def test_a_pipeline_run_inside_a_step_function_still_runs(workdir: Path) -> None:
    """Re-entry is an import's call only: a step may run a pipeline of its own on purpose."""
    import ctasks

    from conveyor import Pipeline, PythonTask

    outer = Pipeline(steps=[PythonTask(ctasks.run_inner, returns=["inner_xs"])], name="outer")
    result = outer.execute(parameters={"n": 3})
    assert result.ok and result.parameters["inner_xs"] == [0, 1, 2]
    names = sorted(str(r.pipeline_name) for r in FileRunLogStore(".conveyor/runs").list_runs(10))
    assert names == ["inner", "outer"]
