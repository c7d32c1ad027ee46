"""``conveyor runs list`` and ``runs show`` over local runs: the run's tag is shown, and
``--status``, ``--pipeline`` and ``--tag`` filter (each alone and together)."""

from __future__ import annotations

from pathlib import Path

import pytest

from support import run_cli


@pytest.fixture
def runs(workdir: Path) -> Path:
    """Four local runs (default config: kept under the working directory)."""
    import ctasks

    from conveyor import Pipeline, PythonTask

    def pipeline(name: str) -> Pipeline:
        return Pipeline(steps=[PythonTask(ctasks.fail_if, returns=["y"])], name=name)

    pipeline("load").execute(parameters={"x": 1, "bad": 9}, run_id="load-nightly", tag="nightly")
    pipeline("load").execute(
        parameters={"x": 9, "bad": 9}, run_id="load-broken", tag="nightly", raise_on_error=False
    )
    pipeline("train").execute(parameters={"x": 1, "bad": 9}, run_id="train-adhoc", tag="adhoc")
    pipeline("train").execute(parameters={"x": 1, "bad": 9}, run_id="train-plain")
    return workdir


ALL = {"load-nightly", "load-broken", "train-adhoc", "train-plain"}


def listed(where: Path, *filters: str) -> set[str]:
    out = run_cli("runs", "list", *filters, cwd=where)
    assert out.returncode == 0, out.stderr
    return {run_id for run_id in ALL if run_id in out.stdout}


def test_filters_choose_local_runs(runs: Path) -> None:
    assert listed(runs) == ALL
    assert listed(runs, "--tag", "nightly") == {"load-nightly", "load-broken"}
    assert listed(runs, "--status", "failed") == {"load-broken"}
    assert listed(runs, "--pipeline", "train") == {"train-adhoc", "train-plain"}
    assert listed(runs, "--tag", "nightly", "--status", "succeeded") == {"load-nightly"}
    assert listed(runs, "--tag", "nightly", "--pipeline", "train") == set()
    none = run_cli("runs", "list", "--tag", "weekly", cwd=runs)
    assert "no runs with tag weekly" in none.stdout


def test_list_and_show_name_the_tag(runs: Path) -> None:
    out = run_cli("runs", "list", cwd=runs)
    rows = {line.split("│")[1].strip(): line for line in out.stdout.splitlines() if line.count("│") > 2}
    assert "nightly" in rows["load-nightly"] and "adhoc" in rows["train-adhoc"]
    assert "nightly" not in rows["train-plain"] and "adhoc" not in rows["train-plain"]
    shown = run_cli("runs", "show", "train-adhoc", cwd=runs)
    assert shown.returncode == 0 and "tag        adhoc" in shown.stdout
    plain = run_cli("runs", "show", "train-plain", cwd=runs)
    assert "tag " not in plain.stdout


def test_untagged_runs_list_has_no_tag_column(workdir: Path) -> None:
    import ctasks

    from conveyor import Pipeline, PythonTask

    Pipeline(steps=[PythonTask(ctasks.noop)], name="p").execute(run_id="untagged")
    out = run_cli("runs", "list", cwd=workdir)
    assert "untagged" in out.stdout and " tag " not in out.stdout


def test_bad_filters_are_explained(runs: Path) -> None:
    bad = run_cli("runs", "list", "--status", "faild", cwd=runs)
    assert bad.returncode == 2
    assert "--status" in bad.stderr and "did you mean 'failed'?" in bad.stderr
    user = run_cli("runs", "list", "--user", "ann", cwd=runs)
    assert user.returncode == 2 and "--user filters a server's runs" in user.stderr


def test_tag_with_a_server_profile_asks_the_server(runs: Path) -> None:
    added = run_cli("profile", "add", "team", "--endpoint", "http://127.0.0.1:9", cwd=runs)
    assert added.returncode == 0, added.stderr
    out = run_cli("runs", "list", "--tag", "nightly", cwd=runs)  # tests/server/test_tags.py: a real one
    assert out.returncode == 2 and "cannot reach http://127.0.0.1:9" in out.stderr


def test_a_table_written_to_a_pipe_is_not_cut_to_80_columns(runs: Path) -> None:
    """Piped (`runs list | grep`), with no COLUMNS set, rich would cut cells at 80 columns."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    out = subprocess.run(
        [sys.executable, "-m", "conveyor.cli", "runs", "list", "--pipeline", "train"],
        cwd=runs,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "train-adhoc" in out.stdout and "pipeline" in out.stdout and "…" not in out.stdout
