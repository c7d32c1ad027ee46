"""runnable's environment variables around an SDK script, as its retry examples and test
harness use them: ``RUNNABLE_PRM_<name>`` parameters, ``RUNNABLE_RUN_ID``,
``RUNNABLE_PARAMETERS_FILE``, ``RUNNABLE_CONFIGURATION_FILE``, and ``RUNNABLE_RETRY_RUN_ID``
resuming a failed run in place (twice: the second finds it succeeded and runs nothing)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conveyor.runlog.file import FileRunLogStore
from conveyor.runlog.records import Status

SCRIPT = """
import os

from conveyor import Pipeline, PythonTask


def increment(param1: int) -> int:
    with open("increments.txt", "a") as handle:
        handle.write("ran\\n")
    return param1 + 1


def check(param1: int, envvar: str):
    if os.environ.get("should_pass") != "true":
        raise ValueError("Environment variable check failed!")
    assert param1 == 42 and envvar == "from env", (param1, envvar)


def main():
    pipeline = Pipeline(steps=[
        PythonTask(name="increment", function=increment, returns=["param1"]),
        PythonTask(name="check", function=check),
    ])
    result = pipeline.execute()
    print("RESULT", result.run_id, result.status, result.parameters["param1"])


if __name__ == "__main__":
    main()
    main()  # as runnable's 09-retry/conditional.py does: a succeeded retry is not run again
"""


def _run(cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    src = str(Path(__file__).resolve().parents[2] / "src")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("RUNNABLE_", "CONVEYOR_"))}
    full = {**base, "PYTHONPATH": src, **env}
    return subprocess.run(
        [sys.executable, "script.py"], cwd=cwd, env=full, capture_output=True, text=True, timeout=120
    )


def test_a_failed_run_is_retried_in_place_from_its_own_parameters(tmp_path: Path) -> None:
    (tmp_path / "script.py").write_text(SCRIPT)
    (tmp_path / "original.yaml").write_text("param1: 41\n")
    (tmp_path / "config.yaml").write_text("run-log-store: {type: file-system, config: {log_folder: runs}}\n")
    common = {"RUNNABLE_CONFIGURATION_FILE": "config.yaml", "RUNNABLE_PRM_envvar": "from env"}
    first = _run(
        tmp_path,
        should_pass="false",
        RUNNABLE_RUN_ID="r1",
        RUNNABLE_PARAMETERS_FILE="original.yaml",
        **common,
    )
    assert first.returncode == 1 and "run 'r1' failed; failed: check" in first.stderr, first.stderr
    store = FileRunLogStore(str(tmp_path / "runs"))
    assert store.load_record("r1").initial_parameters == {"param1": 41, "envvar": "from env"}

    # the retry takes the run's own parameters (not the new RUNNABLE_PRM_param1) and runs
    # only what did not succeed
    retry = _run(tmp_path, should_pass="true", RUNNABLE_RETRY_RUN_ID="r1", RUNNABLE_PRM_param1="99", **common)
    assert retry.returncode == 0, retry.stderr
    assert retry.stdout.count("RESULT r1 succeeded 42") == 2
    assert "run 'r1' already succeeded: nothing to run again" in retry.stderr
    log = store.load("r1")
    assert log.run.status is Status.SUCCEEDED
    assert len(log.steps[("increment",)].attempts) == 1 and len(log.steps[("check",)].attempts) == 2
    assert (tmp_path / "increments.txt").read_text() == "ran\n"


def test_a_retry_of_a_run_that_does_not_exist_names_it(tmp_path: Path) -> None:
    (tmp_path / "script.py").write_text(SCRIPT)
    done = _run(tmp_path, RUNNABLE_RETRY_RUN_ID="never-ran")
    assert done.returncode != 0 and "no run 'never-ran'" in done.stderr
