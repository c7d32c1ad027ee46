"""A runnable SDK script runs with conveyor once its imports say ``conveyor``: the same
names and keywords, and a failed pipeline raises (a script never exits 0 on failure)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conveyor import Catalog, Loop, Pipeline, PythonTask, ShellTask, Stub, metric, pickled
from conveyor.runlog.file import FileRunLogStore

SCRIPT = """
import os

from conveyor import (
    Catalog, Conditional, Fail, Loop, Map, Parallel, Pipeline, PythonTask, ShellTask, Stub,
    Success, json, metric, pickled,
)


def start():
    with open("data.csv", "w") as handle:
        handle.write("1,2,3\\n")
    return [1, 2, 3], {"kind": "numbers"}, 0.5


def count_up(total):
    counter = int(os.environ["counter"])
    return total + counter, counter >= 2


def square(x):
    return x * x


def explode():
    raise ValueError("boom")


def main():
    first = PythonTask(
        name="start", function=start,
        returns=[json("xs"), pickled("meta"), metric("score")],
        catalog=Catalog(put=["data.csv"]),
    )
    later = Stub(name="later", command="to.be.written", returns=["x"])
    each = Map(
        name="each", iterate_on="xs", iterate_as="x", reducer="lambda *x: sum(x)",
        branch=PythonTask(name="square", function=square, returns=["sq"]).as_pipeline(),
    )
    both = Parallel(name="both", branches={
        "a": ShellTask(name="say", command="echo sq=$sq").as_pipeline(),
        "b": Pipeline(steps=[Stub(name="idle")]),
    })
    loop = Loop(
        name="grow", max_iterations=5, break_on="done", index_as="counter",
        branch=Pipeline(steps=[PythonTask(name="count", function=count_up, returns=["total", "done"])]),
    )
    route = Conditional(name="route", parameter="mode", branches={
        "go": Pipeline(steps=[Stub(name="going")]),
        "stop": Pipeline(steps=[Stub(name="stopping", terminate_with_failure=True)]),
    })
    pipeline = Pipeline(name="ported", steps=[first, later, each, both, loop, route])
    result = pipeline.execute(
        configuration_file="config.yaml", parameters_file="params.yaml", run_id="sdk-ok", tag="nightly"
    )
    print("OK", result.status, result.parameters["sq"], result.parameters["total"])

    handled = Pipeline(steps=[
        PythonTask(name="boom", function=explode, on_failure=Pipeline(steps=[Stub(name="recover")])),
        Success(),
    ])
    print("HANDLED", handled.execute(run_id="sdk-handled").status)

    failing = PythonTask(name="boom", function=explode, terminate_with_success=True).as_pipeline()
    soft = failing.execute(raise_on_error=False)
    print("SOFT", soft.status, soft.failed_steps)
    failing.execute(configuration_file="config.yaml", run_id="sdk-bad")


if __name__ == "__main__":
    main()
"""


def test_runnable_style_script_runs_and_fails_loudly(tmp_path: Path) -> None:
    folder = tmp_path / "examples" / "10-sdk"  # not an importable package path, as in runnable
    folder.mkdir(parents=True)
    (folder / "ported.py").write_text(SCRIPT)
    (tmp_path / "config.yaml").write_text(
        "run_log_store: {type: file-system}\ncatalog: {type: file-system}\n"
    )
    (tmp_path / "params.yaml").write_text("mode: go\ntotal: 0\n")
    env = dict(os.environ, COLUMNS="200")
    done = subprocess.run(
        [sys.executable, "examples/10-sdk/ported.py"], cwd=tmp_path, capture_output=True, text=True, env=env
    )
    out = done.stdout + done.stderr
    assert "OK succeeded 14 3" in out, out  # 1+4+9 reduced by the lambda; 0+1+2 over three iterations
    assert "HANDLED succeeded" in out
    assert "SOFT failed ['boom']" in out
    # uncaught, the last failure ends the script non-zero, with the run and its failed step
    assert done.returncode == 1
    assert "ExecutionFailedError: run 'sdk-bad' failed; failed: boom" in out
    log = FileRunLogStore(str(tmp_path / ".run_log_store")).load("sdk-ok")
    assert log.run.extra["tag"] == "nightly"
    assert (tmp_path / ".catalog" / "sdk-ok" / "data.csv").exists()
    assert log.steps[("start",)].attempts[0].metrics == {"score": 0.5}


def test_sdk_builds_the_yaml_format() -> None:
    loop = Loop(
        name="grow",
        branch=Pipeline(steps=[PythonTask(name="count", function=square_for_test, returns=["total"])]),
        max_iterations=3,
        break_on="done",
        index_as="i",
    )
    task = PythonTask(
        name="first",
        function=square_for_test,
        returns=[pickled("p"), metric("m")],
        catalog=Catalog(get=["in.csv"], put=["out.csv"], store_copy=False),
        terminate_with_failure=True,
    )
    data = Pipeline(
        steps=[Stub(name="s", anything=1), loop, ShellTask(name="sh", command="true"), task]
    ).to_dict()
    steps = data["dag"]["steps"]
    assert steps["s"]["anything"] == 1
    assert steps["grow"]["type"] == "loop" and steps["grow"]["branch"]["start_at"] == "count"
    assert steps["first"]["next"] == "fail" and steps["first"]["catalog"] == {
        "get": ["in.csv"],
        "put": ["out.csv"],
    }
    assert steps["first"]["returns"] == [{"name": "p", "kind": "object"}, {"name": "m", "kind": "metric"}]
    with pytest.raises(ValueError, match="both success and failure"):
        Stub(name="x", terminate_with_success=True, terminate_with_failure=True)


def square_for_test(x: int = 2) -> int:
    return x * x
