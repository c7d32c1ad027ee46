"""Resources running out are a step's failure, never the engine's: a step whose output
cannot be kept (a file size limit, a full disk) fails, or stops the run, with the cause
named and exit 1 (not an internal error), nothing is left running, and `retry` finishes
the run once the resource is back."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.runlog.endings import settle
from conveyor.runlog.file import FileRunLogStore
from conveyor.runlog.records import Status
from support import TASKS, run_cli

LOUD = """
dag:
  start_at: big
  steps:
    big: {command: endtasks.loud, next: after}
    after: {command: endtasks.quick, next: success}
"""


def _env() -> dict[str, str]:
    return {"PYTHONPATH": os.pathsep.join(p for p in [str(TASKS), os.environ.get("PYTHONPATH")] if p)}


def _setup(workdir: Path, runs: Path) -> list[str]:
    (workdir / "pipeline.yaml").write_text(LOUD)
    (workdir / "params.yaml").write_text("size: 3000000\nx: 1\n")
    (workdir / "config.yaml").write_text(f"run_log_store: {{type: file, config: {{path: {runs}}}}}\n")
    return ["-f", "pipeline.yaml", "-c", "config.yaml"]


def _limited(max_bytes: int) -> None:
    """In the child: files may not grow past ``max_bytes`` (writes past it get EFBIG)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))


def test_a_file_size_limit_fails_the_step_with_its_cause(workdir: Path) -> None:
    import sys

    args = _setup(workdir, workdir / "runs")
    done = subprocess.run(
        [sys.executable, "-m", "conveyor.cli", "execute", *args, "-p", "params.yaml", "--run-id", "big"],
        cwd=workdir,
        env=dict(os.environ, **_env()),
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: _limited(1_000_000),
    )
    assert done.returncode == 1, done.stderr
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr
    log = FileRunLogStore(str(workdir / "runs")).load("big")
    big = log.steps[("big",)]
    assert log.run.status is Status.FAILED and big.status is Status.FAILED
    location = workdir / "runs" / "big" / "logs"
    assert big.last is not None and big.last.error is not None
    assert big.last.error.startswith("File too large while writing the step's output to " + str(location))
    assert ("after",) not in log.steps
    shown = run_cli("runs", "show", "big", "-c", "config.yaml", cwd=workdir)
    assert "File too large while writing the step's output" in " ".join(shown.stdout.split())

    again = run_cli("retry", "big", "-c", "config.yaml", cwd=workdir, env=_env())  # no limit now
    assert again.returncode == 0, again.stderr
    log = FileRunLogStore(str(workdir / "runs")).load("big")
    assert log.run.status is Status.SUCCEEDED
    assert [a.status for a in log.steps[("big",)].attempts] == [Status.FAILED, Status.SUCCEEDED]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs (root only: where mounting is not allowed, the test is skipped)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_full_disk_stops_the_run_naming_the_cause(workdir: Path, small_disk: Path) -> None:
    args = _setup(workdir, small_disk / "runs")
    full = run_cli("execute", *args, "-p", "params.yaml", "--run-id", "full", cwd=workdir, env=_env())
    assert full.returncode == 1, full.stderr
    where = small_disk / "runs" / "full" / "logs"
    assert "No space left on device while writing the output of step 'big' to " + str(where) in full.stderr
    assert "conveyor retry full" in full.stderr and "internal error" not in full.stderr

    log = settle(FileRunLogStore(str(small_disk / "runs")).load("full"))
    assert log.status in (Status.INTERRUPTED, Status.FAILED)  # whatever the full disk let it record
    assert not any(r.status is Status.RUNNING for r in log.steps.values())
    shown = run_cli("runs", "show", "full", "-c", "config.yaml", cwd=workdir)
    assert shown.returncode == 0 and " running " not in shown.stdout

    grown = subprocess.run(["mount", "-o", "remount,size=20m", str(small_disk)], capture_output=True)
    assert grown.returncode == 0, grown.stderr
    again = run_cli("retry", "full", "-c", "config.yaml", cwd=workdir, env=_env())
    assert again.returncode == 0, again.stderr
    log = FileRunLogStore(str(small_disk / "runs")).load("full")
    assert log.run.status is Status.SUCCEEDED and log.steps[("after",)].status is Status.SUCCEEDED
