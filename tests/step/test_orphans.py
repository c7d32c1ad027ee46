"""When conveyor is killed, its steps' processes die too, those in sessions of their own
included; a step's leftovers do not outlive the step."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support import TASKS

SPAWNER = """
dag:
  start_at: spawn
  steps:
    spawn:
      command_type: shell
      command: |
        sleep 300 & echo $! >> "$PIDS"
        setsid sleep 301 & echo $! >> "$PIDS"
        ( setsid sh -c 'sleep 302 & echo $! >> "$PIDS"; wait' & )
        sleep 0.3; echo started >> "$PIDS.ready"; wait
      next: success
"""


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_for(predicate, seconds: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.time() + seconds
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the guard uses Linux's prctl")
@pytest.mark.parametrize("isolation", ["thread", "process", "pool"])
def test_killing_conveyor_kills_every_process_of_its_steps(tmp_path: Path, isolation: str) -> None:
    (tmp_path / "pipeline.yaml").write_text(SPAWNER)
    (tmp_path / "config.yaml").write_text(f"executor: {{type: local, config: {{isolation: {isolation}}}}}\n")
    pids = tmp_path / "pids"
    env = dict(os.environ, PIDS=str(pids), PYTHONPATH=str(TASKS))
    argv = [sys.executable, "-m", "conveyor.cli", "execute", "-q", "-f", "pipeline.yaml", "-c", "config.yaml"]
    proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: Path(f"{pids}.ready").exists() and len(pids.read_text().split()) == 3)
        started = [int(p) for p in pids.read_text().split()]
        assert all(alive(pid) for pid in started)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert wait_for(lambda: not any(alive(pid) for pid in started)), [p for p in started if alive(p)]
    finally:
        proc.kill()
        for pid in [int(p) for p in pids.read_text().split()] if pids.exists() else []:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_steps_leftover_processes_end_with_it(tmp_path: Path) -> None:
    from support.runs import run_yaml

    pids = tmp_path / "left"
    text = (
        "dag:\n  start_at: a\n  steps:\n    a: {command_type: shell, "
        f"command: 'setsid sleep 303 & echo $! > {pids}', next: success}}\n"
    )
    assert run_yaml(tmp_path, text).ok
    pid = int(pids.read_text())
    assert wait_for(lambda: not alive(pid))
