"""CLI paper cuts a new user met: ``--param``, pipes for ``-f``/``-p``, ``-q`` everywhere,
one progress line per step event, quiet notebook kernels, examples that keep the repository
clean."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from rich.console import Console

from conveyor.cli.progress import ConsoleProgress
from conveyor.runlog.records import EndEvent, StartEvent, Status
from conveyor.spec.errors import SpecError
from conveyor.spec.load import load_parameters, load_pipeline, parse_params, read_stream
from support import ROOT, TASKS, conveyor_traceback, run_cli
from support.services import Server

SHOW = """
def show(n, xs, word, kept):
    print(f"n={n!r}:{type(n).__name__} xs={xs!r} word={word!r} kept={kept!r}")
"""
PIPELINE = "dag:\n  start_at: s\n  steps:\n    s: {command: show_mod.show, next: success}\n"


def project(tmp_path: Path) -> Path:
    (tmp_path / "show_mod.py").write_text(SHOW)
    (tmp_path / "pipeline.yaml").write_text(PIPELINE)
    (tmp_path / "params.yaml").write_text("n: 1\nxs: []\nword: file\nkept: from-file\n")
    return tmp_path


# --param


def test_param_values_are_read_as_yaml_and_win_over_the_file(tmp_path: Path) -> None:
    where = project(tmp_path)
    out = run_cli(
        "execute",
        *("-f", "pipeline.yaml", "-p", "params.yaml"),
        *("--param", "n=3", "--param", "xs=[1, 2]", "--param", "word=yes"),
        cwd=where,
    )
    assert out.returncode == 0, out.stderr
    assert "n=3:int xs=[1, 2] word='yes' kept='from-file'" in out.stdout


def test_param_without_a_file_and_the_last_one_wins() -> None:
    assert parse_params(["a=1", "a=x: y", "b=", "c=a=b"]) == {"a": {"x": "y"}, "b": None, "c": "a=b"}
    assert load_parameters(None, environ={"CONVEYOR_PRM_a": "2"}, overrides={"a": 5}) == {"a": 5}


@pytest.mark.parametrize(
    ("option", "found"), [("nokey", "no '='"), ("=3", "no name"), (" a=3", "spaces around the name")]
)
def test_malformed_param_is_exit_2_with_its_place(tmp_path: Path, option: str, found: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_params([option])
    assert f'"--param {option}"' in caught.value.show() and found in caught.value.show()
    if option == "nokey":  # and through the command line, the same message and exit 2
        out = run_cli("execute", "-f", "pipeline.yaml", "--param", option, cwd=project(tmp_path))
        assert out.returncode == 2
        assert 'command line: "--param nokey": a parameter is given as NAME=VALUE' in out.stderr
        assert "found no '='" in out.stderr


def test_retry_refuses_param_and_says_why(tmp_path: Path) -> None:
    out = run_cli("retry", "some-run", "--param", "n=3", cwd=tmp_path)
    assert out.returncode == 2
    assert "recorded parameters" in out.stderr and "conveyor execute" in out.stderr


# pipes for -f and -p


def shell(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """A command line in bash (process substitution is bash's), with this checkout's conveyor."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "COLUMNS": "200"}
    done = subprocess.run(
        ["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    assert not conveyor_traceback(done.stdout + done.stderr), done.stderr
    return done


def test_pipeline_and_parameters_from_pipes(tmp_path: Path) -> None:
    where = project(tmp_path)
    conveyor = f"{sys.executable} -m conveyor.cli"
    out = shell(
        f"{conveyor} execute -f <(cat pipeline.yaml) -p /dev/stdin --param n=7 --run-id piped < params.yaml",
        where,
    )
    assert out.returncode == 0, out.stderr
    assert "n=7:int xs=[] word='file' kept='from-file'" in out.stdout
    assert "pipeline pipeline" in out.stderr  # named as a pipeline, not as file descriptor 63
    bad = shell(f"{conveyor} validate --no-import -f <(printf 'dag: [') ", where)
    assert bad.returncode == 2 and "/dev/fd/" in bad.stderr


def pipe_of(data: bytes) -> tuple[str, int, threading.Thread]:
    """A pipe as process substitution makes one (``/dev/fd/N``, its writer already there),
    fed from a thread; the read end's number, to close once read."""
    read, write = os.pipe()

    def feed() -> None:
        try:
            with os.fdopen(write, "wb") as handle:
                handle.write(data)
        except BrokenPipeError:  # the reader stopped at its limit
            pass

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    return f"/dev/fd/{read}", read, thread


def test_a_pipe_is_read_once_within_the_size_limit() -> None:
    path, read, writer = pipe_of(b"x" * (9 * 1024 * 1024))  # more than the 8 MiB of a pipeline
    with pytest.raises(SpecError) as caught:
        load_pipeline(path)
    os.close(read)
    writer.join(10)
    assert not writer.is_alive()
    assert "the stream is too large" in caught.value.show() and "8,388,608" in caught.value.show()
    path, read, writer = pipe_of(b"1234567890")
    with pytest.raises(SpecError, match="too large"):
        read_stream(path, max_bytes=9)
    os.close(read)
    path, read, writer = pipe_of(PIPELINE.encode())
    loaded = load_pipeline(path)
    os.close(read)
    # No file to read again, no folder of functions: they are found from the working directory.
    assert loaded.file is None and loaded.name == "pipeline"
    assert loaded.pipeline.dag.start_at == "s"


def test_a_named_pipe_nobody_writes_to_is_refused_not_waited_on(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(SpecError) as caught:
        load_pipeline(tmp_path / "fifo")
    assert "a pipe with no writer and nothing in it" in caught.value.show()


def test_a_terminal_or_device_is_still_refused(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="not a regular file"):
        load_pipeline("/dev/zero")


# -q


def test_execute_and_retry_quiet_print_no_step_lines(tmp_path: Path) -> None:
    where = project(tmp_path)
    (where / "config.yaml").write_text("run_log_store: {type: file}\n")
    loud = run_cli("execute", "-f", "pipeline.yaml", "-p", "params.yaml", "-c", "config.yaml", cwd=where)
    assert loud.returncode == 0 and "✓ s " in loud.stderr
    quiet = run_cli(
        "execute",
        "-q",
        "-f",
        "pipeline.yaml",
        "-p",
        "params.yaml",
        "-c",
        "config.yaml",
        "--run-id",
        "q1",
        cwd=where,
    )
    assert quiet.returncode == 0 and "✓ s " not in quiet.stderr and "run q1" not in quiet.stderr
    retried = run_cli("retry", "q1", "-q", "-c", "config.yaml", cwd=where)
    assert retried.returncode == 2 and "already succeeded" in retried.stderr  # -q is accepted


def test_submit_quiet_and_param_on_a_server(tmp_path: Path) -> None:
    server = Server(f"sqlite:///{tmp_path / 'server.db'}", tmp_path).start()
    try:
        env = {"CONVEYOR_ENDPOINT": server.endpoint, "CONVEYOR_TOKEN": server.tokens["ann"]}
        (tmp_path / "params.yaml").write_text("a: 2\nb: 3\n")
        (tmp_path / "pipeline.yaml").write_text(
            "dag:\n  start_at: add\n  steps:\n    add: {command: ctasks.add, returns: [c], next: success}\n"
        )
        args = ("submit", "-f", "pipeline.yaml", "-p", "params.yaml", "--code", str(TASKS), "--param", "a=40")
        quiet = run_cli(*args, "-q", "--run-id", "quiet-run", cwd=tmp_path, env=env)
        assert quiet.returncode == 0, quiet.stderr
        assert quiet.stdout.strip() == "quiet-run"  # the run id alone, for scripts
        waited = run_cli(*args, "-q", "--wait", "--run-id", "waited", cwd=tmp_path, env=env)
        assert waited.returncode == 0, waited.stderr
        assert waited.stdout.startswith("waited\n") and "succeeded" in waited.stdout
        headers = {"Authorization": f"Bearer {server.tokens['ann']}"}
        run = httpx.get(f"{server.endpoint}/api/v1/runs/waited", headers=headers, timeout=30).json()
        assert run["parameters"] == {"a": 40, "b": 3}
    finally:
        server.stop()


# one line per step event


def test_a_mocked_attempt_is_one_line(tmp_path: Path) -> None:
    where = project(tmp_path)
    (where / "config.yaml").write_text("executor: {type: mocked}\n")
    out = run_cli("execute", "-f", "pipeline.yaml", "-p", "params.yaml", "-c", "config.yaml", cwd=where)
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.startswith("  ✓ s")]
    assert len(lines) == 1 and "mocked (not run)" in lines[0], out.stderr


def test_a_cached_attempt_is_one_line(tmp_path: Path) -> None:
    where = project(tmp_path)
    (where / "pipeline.yaml").write_text(PIPELINE.replace("dag:\n", "dag:\n  cache: true\n"))
    (where / "config.yaml").write_text("run_log_store: {type: file}\ncatalog: {type: file}\n")
    base = ("execute", "-f", "pipeline.yaml", "-p", "params.yaml", "-c", "config.yaml")
    assert run_cli(*base, "--run-id", "first", cwd=where).returncode == 0
    again = run_cli(*base, "--run-id", "second", cwd=where)
    lines = [line for line in again.stderr.splitlines() if line.startswith("  ✓ s")]
    assert len(lines) == 1 and "cached from run first" in lines[0], again.stderr


def test_console_progress_folds_marks_into_the_attempt_line() -> None:
    buffer = io.StringIO()
    progress = ConsoleProgress(Console(file=buffer, width=200))
    cached = {"cached": {"key": "k" * 64, "run": "r1"}}
    progress.receive(
        [StartEvent(["a"], 1, 10.0), EndEvent(["a"], 1, 10.01, Status.SUCCEEDED, started=10.0, info=cached)]
    )
    progress.receive(
        [EndEvent(["b"], 1, 11.01, Status.SUCCEEDED, started=11.0)]
    )  # no marks: no leftover from 'a'
    lines = buffer.getvalue().splitlines()
    assert lines == ["  ✓ a  0.01s, cached from run r1", "  ✓ b  0.01s"]
    assert progress.records[("a",)].info["cached"]["run"] == "r1"  # the summary still says it


# notebooks


def test_notebook_map_items_print_no_kernel_warnings(tmp_path: Path) -> None:
    nbformat = pytest.importorskip("nbformat", reason="the notebook extra is not installed")
    pytest.importorskip("nbclient", reason="the notebook extra is not installed")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("y = x * 2\nprint('y is', y)")]
    nbformat.write(nb, str(tmp_path / "double.ipynb"))
    (tmp_path / "pipeline.yaml").write_text(
        "dag:\n  start_at: each\n  steps:\n    each:\n      type: map\n      iterate_on: xs\n"
        "      iterate_as: x\n      branch:\n        start_at: nb\n        steps:\n"
        "          nb: {command_type: notebook, command: double.ipynb, returns: [y], next: success}\n"
        "      next: success\n"
    )
    out = run_cli("execute", "-f", "pipeline.yaml", "--param", "xs=[1, 2]", cwd=tmp_path, timeout=240)
    assert out.returncode == 0, out.stderr
    assert "y is 2" in out.stdout + out.stderr and "y is 4" in out.stdout + out.stderr
    for noise in ("IPKernelApp", "without encryption", "frozen modules", "Debugger warning"):
        assert noise not in out.stdout + out.stderr


# examples


def test_examples_run_from_the_repository_root_leave_it_clean(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(ROOT / "examples", root / "examples")
    shutil.copy(ROOT / ".gitignore", root / ".gitignore")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "examples"]):
        subprocess.run([*git, *command], cwd=root, check=True, capture_output=True)
    for pipeline in sorted((root / "examples").glob("*/pipeline.yaml")):
        folder = pipeline.parent.relative_to(root)
        extra = [
            ["-c", str(folder / "config.yaml")] if (pipeline.parent / "config.yaml").exists() else [],
            ["-p", str(folder / "params.yaml")] if (pipeline.parent / "params.yaml").exists() else [],
        ]
        out = run_cli("execute", "-q", "-f", str(folder / "pipeline.yaml"), *extra[0], *extra[1], cwd=root)
        assert out.returncode == 0, f"{folder}: {out.stderr}"
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, check=True
    )
    assert status.stdout == ""
    assert (root / "out/squares.txt").exists() and (root / "out/sums").is_dir()  # they did write
