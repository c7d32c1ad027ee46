"""With no config at all, runs are kept: the run log and the catalog are files under
``.conveyor/`` in the working directory, so every command that reads runs back finds them
without ``-c``. ``memory`` and ``none`` are still there, by name."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx

from conveyor.runlog.file import FileRunLogStore
from support import ROOT, TASKS, run_cli

ENV = {"PYTHONPATH": str(TASKS)}
GATED = """
dag:
  start_at: first
  steps:
    first: {command_type: shell, command: echo first ran >> first.txt, next: gate}
    gate: {command_type: shell, command: test -f open, next: success}
"""


def test_runs_are_kept_in_the_working_directory_with_no_config(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "examples" / "hello_world", tmp_path / "hello_world")
    out = run_cli("execute", "-f", "hello_world/pipeline.yaml", "--run-id", "hello", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    kept = FileRunLogStore(str(tmp_path / ".conveyor" / "runs")).load("hello")
    assert kept.run.status == "succeeded" and kept.run.final_parameters["letters"] == 10
    listed = run_cli("runs", "list", cwd=tmp_path)
    assert listed.returncode == 0 and "hello" in listed.stdout and "succeeded" in listed.stdout
    shown = run_cli("runs", "show", "hello", cwd=tmp_path)
    assert shown.returncode == 0 and '"letters": 10' in shown.stdout, shown.stderr
    logs = run_cli("runs", "logs", "hello", "greet", cwd=tmp_path)
    assert logs.returncode == 0 and "Hello, world!" in logs.stdout
    assert [r["id"] for r in _ui_runs(tmp_path)] == ["hello"]


def _ui_runs(where: Path) -> list[dict[str, object]]:
    """The runs ``conveyor ui`` (no config) lists, started in ``where``."""
    from support.services import free_port

    port = free_port()
    command = [sys.executable, "-m", "conveyor.cli", "ui", "--port", str(port)]
    ui = subprocess.Popen(command, cwd=where, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        while True:
            try:
                runs: list[dict[str, object]] = httpx.get(f"http://127.0.0.1:{port}/ui/api/runs").json()[
                    "runs"
                ]
                return runs
            except httpx.HTTPError:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        ui.terminate()
        ui.wait(timeout=10)


def test_a_failed_run_is_shown_and_retried_with_no_config(tmp_path: Path) -> None:
    (tmp_path / "pipeline.yaml").write_text(GATED)
    out = run_cli("execute", "-f", "pipeline.yaml", "--run-id", "gated", cwd=tmp_path)
    assert out.returncode == 1
    # the command the CLI suggests works as written
    suggested = "conveyor runs show gated"
    assert suggested in out.stderr
    shown = run_cli(*suggested.split()[1:], cwd=tmp_path)
    assert shown.returncode == 0 and "failed" in shown.stdout, shown.stderr
    (tmp_path / "open").write_text("")
    again = run_cli("retry", "gated", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "first.txt").read_text() == "first ran\n"  # reused, not run again
    assert FileRunLogStore(str(tmp_path / ".conveyor" / "runs")).load("gated").run.resumed == 1


def test_the_step_cache_lasts_across_runs_with_no_config(tmp_path: Path) -> None:
    where = tmp_path / "caching"
    shutil.copytree(ROOT / "examples" / "caching", where)
    (where / "config.yaml").unlink()
    for run_id in ("first", "second"):
        out = run_cli("execute", "-f", "pipeline.yaml", "-p", "params.yaml", "--run-id", run_id, cwd=where)
        assert out.returncode == 0, out.stderr
    shown = run_cli("runs", "show", "second", cwd=where).stdout
    assert shown.count("cached: from run first") == 2
    assert (where / ".conveyor" / "catalog").is_dir()


def test_memory_and_none_by_name_keep_nothing(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "examples" / "hello_world", tmp_path / "hello_world")
    (tmp_path / "config.yaml").write_text("run_log_store: {type: memory}\ncatalog: {type: none}\n")
    out = run_cli("execute", "-f", "hello_world/pipeline.yaml", "-c", "config.yaml", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert not (tmp_path / ".conveyor").exists()


def test_runnable_config_without_stores_keeps_runs_the_same_way(tmp_path: Path) -> None:
    """runnable's configs name no run log store or catalog when they keep its defaults."""
    (tmp_path / "pipeline.yaml").write_text(GATED.replace("test -f open", "exit 0"))
    (tmp_path / "config.yaml").write_text("pipeline-executor: {type: local}\n")
    out = run_cli("execute", "-f", "pipeline.yaml", "-c", "config.yaml", "--run-id", "r", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert FileRunLogStore(str(tmp_path / ".conveyor" / "runs")).load("r").run.status == "succeeded"
    assert run_cli("runs", "show", "r", cwd=tmp_path).returncode == 0


def test_sdk_execute_keeps_its_runs_by_default(workdir: Path) -> None:
    import ctasks

    from conveyor import Pipeline, PythonTask

    result = Pipeline(steps=[PythonTask(ctasks.numbers, returns=["xs"])], name="sdk").execute(
        parameters={"n": 2}, run_id="sdk-run"
    )
    assert result.ok
    kept = FileRunLogStore(str(workdir / ".conveyor" / "runs")).load("sdk-run")
    assert kept.run.final_parameters["xs"] == [0, 1]
    assert run_cli("runs", "show", "sdk-run", cwd=workdir).returncode == 0


def test_a_failed_sdk_run_is_retried_from_the_cli(tmp_path: Path) -> None:
    """An SDK pipeline has no file: `conveyor retry` resumes it from the definition the run
    log keeps, reusing the steps that succeeded."""
    script = tmp_path / "flow.py"
    script.write_text(
        "import pathlib\n"
        "from conveyor import Pipeline, PythonTask\n\n"
        "def first():\n"
        "    with open('first.count', 'a') as f:\n"
        "        f.write('x')\n\n"
        "def second():\n"
        "    if not pathlib.Path('go').exists():\n"
        "        raise ValueError('not yet')\n\n"
        "if __name__ == '__main__':\n"
        "    Pipeline(steps=[PythonTask(function=first, name='a'), PythonTask(function=second, name='b')],"
        " name='flow').execute(run_id='sdk-run')\n"
    )
    failed = subprocess.run(
        [sys.executable, "flow.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert failed.returncode != 0 and "not yet" in failed.stdout + failed.stderr
    (tmp_path / "go").write_text("")
    retried = run_cli("retry", "sdk-run", cwd=tmp_path)
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert "built in Python: it resumes from the pipeline its run log keeps" in " ".join(
        retried.stderr.split()
    )
    assert (tmp_path / "first.count").read_text() == "x"  # the succeeded step was reused
    # The summary agrees with `runs show`: b's failed attempt and its retry, a's one attempt.
    rows = {
        line.split("│")[1].strip(): line.split("│")[4].strip()
        for line in retried.stdout.splitlines()
        if line.startswith("│")
    }
    assert rows == {"a": "1", "b": "2"}, retried.stdout
    record = FileRunLogStore(str(tmp_path / ".conveyor" / "runs")).load_record("sdk-run")
    assert record.status == "succeeded" and record.pipeline_file == "<sdk:flow>"
