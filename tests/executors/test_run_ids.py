"""A run id names exactly one run, and a run's liveness is a lease in its run log."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conveyor.executors.run import RunRefused
from conveyor.runlog.base import RunExistsError, RunNotFoundError, effective_status
from conveyor.runlog.file import FileRunLogStore
from conveyor.runlog.records import Status
from support import TASKS, run_cli
from support.runs import retry, run_yaml, runlog, step

SLOW = """
dag:
  start_at: one
  steps:
    one: {command: ctasks.record, returns: [first], next: wait}
    wait: {command: ctasks.sleep_for, next: success}
"""
QUICK = """
dag:
  start_at: one
  steps:
    one: {command: ctasks.record, returns: [first], next: success}
"""


def test_two_executes_with_one_run_id_run_it_once(workdir: Path, file_config: Path) -> None:
    """Started at once: exactly one runs the pipeline; the other is refused, and every step
    has one attempt numbered 1."""
    (workdir / "pipeline.yaml").write_text(SLOW)
    counter = workdir / "counter"
    (workdir / "params.yaml").write_text(f"counter: {counter}\ntag: ran\nseconds: 1.0\n")
    argv = [sys.executable, "-m", "conveyor.cli", "execute", "-q", "-f", "pipeline.yaml"]
    argv += ["-c", str(file_config), "-p", "params.yaml", "--run-id", "twice"]
    env = {"PYTHONPATH": str(TASKS), "PATH": "/usr/bin:/bin"}
    procs = [
        subprocess.Popen(argv, cwd=workdir, env=env, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    results = [(p.wait(timeout=60), p.stderr.read() if p.stderr else "") for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    refused = next(err for code, err in results if code == 2)
    assert "run 'twice' already exists" in refused and "conveyor retry twice" in refused
    assert counter.read_text().splitlines() == ["ran"]
    log = FileRunLogStore(str(workdir / "runs")).load("twice")
    assert [a.attempt for a in step(log, "one").attempts] == [1]
    after = run_cli("execute", *argv[4:], cwd=workdir, env={"PYTHONPATH": str(TASKS)})
    assert after.returncode == 2 and "already exists" in after.stderr  # also once it has ended


def test_a_run_directory_left_without_its_record_is_not_reused(workdir: Path) -> None:
    (workdir / "runs" / "gone").mkdir(parents=True)
    (workdir / "runs" / "gone" / "events.jsonl").write_text('{"e": "start", "path": ["one"], "attempt": 1}\n')
    with pytest.raises(RunExistsError, match="run 'gone' already exists"):
        run_yaml(workdir, QUICK, {"counter": str(workdir / "c"), "tag": "t"}, run_id="gone")


def _running(store: FileRunLogStore, run_id: str, lease_until: float, host: str = "elsewhere") -> None:
    record = store.load(run_id).run
    record.status, record.lease_until, record.host, record.pid = Status.RUNNING, lease_until, host, 4242
    store.save_run(record)


def test_retry_waits_for_the_lease_then_takes_over_from_any_host(workdir: Path) -> None:
    first = run_yaml(workdir, SLOW, {"counter": str(workdir / "c"), "tag": "t", "seconds": "x"})
    assert first.status == "failed"
    store = FileRunLogStore(str(workdir / "runs"))
    _running(store, first.run_id, time.time() + 300)  # a driver on another host holds it
    assert store.load(first.run_id).status is Status.RUNNING
    with pytest.raises(RunRefused, match=r"still running \(pid 4242 on elsewhere\); its lease expires at"):
        retry(workdir, first.run_id)
    _running(store, first.run_id, time.time() - 1)  # that driver stopped renewing it
    assert store.load(first.run_id).status is Status.INTERRUPTED
    (workdir / "pipeline.yaml").write_text(SLOW)
    resumed = retry(workdir, first.run_id)
    assert resumed.status == "failed" and runlog(workdir, first.run_id).run.resumed == 1


def test_force_takes_over_a_live_lease(workdir: Path, file_config: Path) -> None:
    (workdir / "pipeline.yaml").write_text(QUICK)
    (workdir / "params.yaml").write_text(f"counter: {workdir / 'c'}\ntag: t\n")
    args = ["-f", "pipeline.yaml", "-c", str(file_config)]
    run_cli(
        "execute", *args, "-p", "params.yaml", "--run-id", "held", cwd=workdir, env={"PYTHONPATH": str(TASKS)}
    )
    store = FileRunLogStore(str(workdir / "runs"))
    record = store.load("held").run
    record.status, record.lease_until, record.host = Status.RUNNING, time.time() + 300, "elsewhere"
    store.save_run(record)
    refused = run_cli("retry", "held", "-c", str(file_config), cwd=workdir)
    assert refused.returncode == 2 and "--force" in refused.stderr
    forced = run_cli(
        "retry", "held", "-c", str(file_config), "--force", cwd=workdir, env={"PYTHONPATH": str(TASKS)}
    )
    assert forced.returncode == 0, forced.stderr
    assert store.load("held").run.status is Status.SUCCEEDED


def test_a_running_run_holds_a_renewed_lease(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import conveyor.runlog.base

    monkeypatch.setattr(conveyor.runlog.base, "LEASE_SECONDS", 0.6)
    seen: list[float] = []
    store = FileRunLogStore(str(workdir / "runs"))
    done = threading.Event()

    def watch() -> None:  # what any other process reading the store sees while the run goes
        while not done.is_set():
            with contextlib.suppress(RunNotFoundError, OSError, ValueError):
                lease = store.load_record("leased").lease_until
                if lease is not None:
                    seen.append(lease)
            time.sleep(0.05)

    from conveyor.executors.run import execute
    from conveyor.spec.load import load_pipeline
    from support.runs import file_config

    (workdir / "pipeline.yaml").write_text(SLOW)
    started = time.time()
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        result = execute(
            load_pipeline(workdir / "pipeline.yaml"),
            file_config(workdir),
            {"counter": str(workdir / "c"), "tag": "t", "seconds": 1.5},
            run_id="leased",
        )
    finally:
        done.set()
        watcher.join()
    assert result.ok
    assert seen, "the run's record never showed a lease"
    assert max(seen) > seen[0] and max(seen) > started + 1.5  # renewed while `wait` slept
    final = store.load(result.run_id).run
    assert final.lease_until is None and effective_status(final) is Status.SUCCEEDED
