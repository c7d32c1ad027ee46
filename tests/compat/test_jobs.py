"""runnable's jobs (``PythonJob``, ``NotebookJob``, ``ShellJob``): one task run with
``.execute()`` as a pipeline of that task, recorded in the run log, its returns recorded,
its catalog ``put`` kept (or, with ``store_copy=False``, recorded by hash only)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from conveyor import Catalog, ExecutionFailedError, NotebookJob, PythonJob, ShellJob, metric, pickled
from conveyor.runlog.file import FileRunLogStore
from conveyor.runlog.records import Status
from support import ROOT


def _config(workdir: Path) -> dict[str, object]:
    return {
        "run_log_store": {"type": "file", "config": {"path": str(workdir / "runs")}},
        "catalog": {"type": "file", "config": {"location": str(workdir / "catalog")}},
    }


def _attempt(workdir: Path, run_id: str, step: str):  # type: ignore[no-untyped-def]
    log = FileRunLogStore(path=str(workdir / "runs")).load(run_id)
    record = log.step([step])
    assert record is not None, f"no step {step} in {sorted(log.steps)}"
    return log, record


def test_python_job_records_returns_and_puts_files(workdir: Path) -> None:
    from jobtasks import write_outputs

    job = PythonJob(
        function=write_outputs,
        returns=["rows", metric("score")],
        catalog=Catalog(put=["out.csv", "folder/notes.txt"]),
    )
    result = job.execute(configuration_file=_config(workdir), job_id="job-py", tag="nightly")
    assert result.ok and result.run_id == "job-py"
    assert result.parameters["rows"] == 3
    log, step = _attempt(workdir, "job-py", "write_outputs")
    assert log.run.status is Status.SUCCEEDED and log.run.extra["tag"] == "nightly"
    attempt = step.attempts[-1]
    assert attempt.returns == {"rows": 3} and attempt.metrics == {"score": 0.3}
    names = {e["name"]: e for e in attempt.catalog}
    assert set(names) == {"out.csv", "folder/notes.txt"}
    copied = workdir / "catalog" / "job-py" / "out.csv"
    assert copied.read_text() == (workdir / "out.csv").read_text()
    assert names["out.csv"]["sha256"] == hashlib.sha256(copied.read_bytes()).hexdigest()


def test_store_copy_false_records_the_hash_without_a_copy(workdir: Path) -> None:
    from jobtasks import write_outputs

    job = PythonJob(function=write_outputs, catalog=Catalog(put=["out.csv"], store_copy=False))
    job.execute(configuration_file=_config(workdir), job_id="job-nocopy")
    _, step = _attempt(workdir, "job-nocopy", "write_outputs")
    (entry,) = step.attempts[-1].catalog
    assert entry["name"] == "out.csv" and entry["location"] is None
    assert entry["sha256"] == hashlib.sha256((workdir / "out.csv").read_bytes()).hexdigest()
    assert not (workdir / "catalog" / "job-nocopy" / "out.csv").exists()


def test_pickled_returns_and_parameters_file(workdir: Path) -> None:
    from jobtasks import write_outputs

    (workdir / "params.yaml").write_text("rows: 5\n")
    job = PythonJob(function=write_outputs, returns=[pickled("rows"), "score"])
    result = job.execute(configuration_file=_config(workdir), parameters_file="params.yaml")
    assert result.parameters["score"] == 0.5
    _, step = _attempt(workdir, result.run_id, "write_outputs")
    kept = step.attempts[-1].returns["rows"]
    assert isinstance(kept, dict) and "sha256" in kept  # an object, kept in the catalog, not JSON


def test_shell_job_exports_its_returns(workdir: Path) -> None:
    job = ShellJob(command='echo "making $who"; export made="by $who"', returns=["made"])
    result = job.execute(configuration_file=_config(workdir), parameters={"who": "shell"})
    assert result.parameters["made"] == "by shell"
    _, step = _attempt(workdir, result.run_id, "shell")
    assert "making shell" in Path(str(step.attempts[-1].log)).read_text()


def test_notebook_job_returns_its_variables(workdir: Path) -> None:
    pytest.importorskip("nbclient", reason="the notebook extra is not installed")
    import nbformat

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x = 1")
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell, nbformat.v4.new_code_cell("y = x * 10")]
    nbformat.write(nb, str(workdir / "calc.ipynb"))
    result = NotebookJob(notebook="calc.ipynb", returns=["y"]).execute(
        configuration_file=_config(workdir), parameters={"x": 4}
    )
    assert result.parameters["y"] == 40
    _, step = _attempt(workdir, result.run_id, "calc")
    assert step.status is Status.SUCCEEDED and step.attempts[-1].catalog  # the executed notebook


def test_failed_job_raises_and_is_recorded_failed(workdir: Path) -> None:
    from jobtasks import explode

    with pytest.raises(ExecutionFailedError) as caught:
        PythonJob(function=explode).execute(configuration_file=_config(workdir), job_id="job-fails")
    assert caught.value.failed_steps == ["explode"]
    _, step = _attempt(workdir, "job-fails", "explode")
    assert step.status is Status.FAILED and step.attempts[-1].error == "RuntimeError: the job broke"


def test_job_refuses_catalog_get() -> None:
    from jobtasks import write_outputs

    with pytest.raises(
        ValueError, match=r"a job cannot get files from the catalog \(found get=\['in.csv'\]\)"
    ):
        PythonJob(function=write_outputs, catalog=Catalog(get=["in.csv"]))


def test_job_script_exits_non_zero_on_failure(tmp_path: Path) -> None:
    """A job script run as a user runs it: a failed job ends the script with exit 1, saying
    which run and step failed; the run is on record for ``conveyor runs show``."""
    (tmp_path / "job.py").write_text(
        "from conveyor import PythonJob\n\n"
        "def broken():\n    raise KeyError('missing')\n\n"
        "if __name__ == '__main__':\n    PythonJob(function=broken).execute(job_id='scripted')\n"
    )
    env = {"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "job.py"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 1, done.stderr
    assert "run 'scripted' failed; failed: broken" in done.stderr
    shown = subprocess.run(
        [sys.executable, "-m", "conveyor.cli", "runs", "show", "scripted"],
        cwd=tmp_path, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert "broken" in shown.stdout and "failed" in shown.stdout, shown.stdout + shown.stderr
