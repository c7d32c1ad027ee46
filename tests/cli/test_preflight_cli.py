"""``conveyor validate`` and ``conveyor execute`` find code mistakes before anything runs."""

from __future__ import annotations

from pathlib import Path

from support import run_cli

STEPS = """
from pathlib import Path


def write_marker():
    Path("made.txt").write_text("ran")
    return 3


def scale(count, factor):
    return count * factor
"""

PIPELINE = """\
dag:
  start_at: first
  steps:
    first: {command: mysteps.write_marker, returns: [count], next: second}
    second: {command: mysteps.%s, returns: [scaled], next: success}
"""
CONFIG = "run_log_store: {type: file, config: {path: runs}}\n"


def project(tmp_path: Path, function: str = "scale") -> Path:
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "mysteps.py").write_text(STEPS)
    (tmp_path / "pipeline.yaml").write_text(PIPELINE % function)
    (tmp_path / "config.yaml").write_text(CONFIG)
    (tmp_path / "params.yaml").write_text("factor: 2\n")
    return tmp_path


def test_validate_finds_a_typo_in_a_function_name(tmp_path: Path) -> None:
    project(tmp_path, "scael")
    out = run_cli("validate", "-f", "pipeline.yaml", cwd=tmp_path)
    assert out.returncode == 2
    assert "pipeline.yaml:5: dag.steps.second.command: function 'mysteps.scael' does not exist" in out.stderr
    assert "did you mean 'scale'?" in out.stderr


def test_validate_no_import_skips_the_code(tmp_path: Path) -> None:
    project(tmp_path, "scael")
    (tmp_path / "mysteps.py").unlink()  # a machine without the code
    assert run_cli("validate", "-f", "pipeline.yaml", cwd=tmp_path).returncode == 2
    out = run_cli("validate", "-f", "pipeline.yaml", "--no-import", cwd=tmp_path)
    assert out.returncode == 0 and "valid pipeline" in out.stdout


def test_validate_checks_arguments_against_the_parameters_file(tmp_path: Path) -> None:
    project(tmp_path)
    (tmp_path / "none.yaml").write_text("{}\n")
    missing = run_cli("validate", "-f", "pipeline.yaml", "-p", "none.yaml", cwd=tmp_path)
    assert missing.returncode == 2
    assert "function 'mysteps.scale' needs parameter 'factor', which nothing sets before step 'second'" in (
        missing.stderr
    )
    assert "CONVEYOR_PRM_factor" in missing.stderr
    given = run_cli("validate", "-f", "pipeline.yaml", "-p", "params.yaml", cwd=tmp_path)
    assert given.returncode == 0 and given.stderr == "", given.stderr
    from_env = run_cli(
        "validate", "-f", "pipeline.yaml", "-p", "none.yaml", cwd=tmp_path, env={"CONVEYOR_PRM_factor": "2"}
    )
    assert from_env.returncode == 0, from_env.stderr
    # without -p the initial parameters are unknown: a note, not an error
    unknown = run_cli("validate", "-f", "pipeline.yaml", cwd=tmp_path)
    assert (
        unknown.returncode == 0 and "note: step 'second'" in unknown.stderr and "'factor'" in unknown.stderr
    )


def test_execute_refuses_before_the_first_step_runs(tmp_path: Path) -> None:
    project(tmp_path, "scael")
    out = run_cli("execute", "-f", "pipeline.yaml", "-c", "config.yaml", "-p", "params.yaml", cwd=tmp_path)
    assert out.returncode == 2
    assert "function 'mysteps.scael' does not exist" in out.stderr
    assert not (tmp_path / "made.txt").exists()  # the first step did not run
    runs = tmp_path / "runs"
    assert not runs.exists() or not any(runs.rglob("*")), "nothing is recorded as run"


def test_execute_refuses_a_missing_argument_before_running(tmp_path: Path) -> None:
    project(tmp_path)
    out = run_cli("execute", "-f", "pipeline.yaml", "-c", "config.yaml", cwd=tmp_path)
    assert out.returncode == 2 and "needs parameter 'factor'" in out.stderr
    assert not (tmp_path / "made.txt").exists()
    ran = run_cli("execute", "-f", "pipeline.yaml", "-c", "config.yaml", "-p", "params.yaml", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert (tmp_path / "made.txt").read_text() == "ran"


def test_execute_no_import_runs_until_the_typo(tmp_path: Path) -> None:
    project(tmp_path, "scael")
    out = run_cli(
        "execute",
        "-f",
        "pipeline.yaml",
        "-c",
        "config.yaml",
        "-p",
        "params.yaml",
        "--no-import",
        cwd=tmp_path,
    )
    assert out.returncode == 1  # the run failed at the second step, after the first had run
    assert (tmp_path / "made.txt").exists()


def test_the_hint_names_the_parameters_file_beside_the_pipeline(tmp_path: Path) -> None:
    # A newcomer running an example from the repository's root: the parameters it needs are
    # in the example's own params.yaml, and the hint says that path (new-user review).
    project(tmp_path / "example")
    out = run_cli(
        "execute", "-f", "example/pipeline.yaml", cwd=tmp_path, env={"PYTHONPATH": str(tmp_path / "example")}
    )
    assert out.returncode == 2
    assert "give it with -p example/params.yaml" in out.stderr, out.stderr
    assert not (tmp_path / "made.txt").exists()  # nothing ran
