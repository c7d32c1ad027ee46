"""Every ending leaves true statuses: a `conveyor execute` killed with SIGKILL or stopped
with SIGINT leaves no step or map item running, in `runs show`, the UI's run data or the
store itself, and durations stop growing; `retry` records the old attempts' end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conveyor.runlog.base import RunLog
from conveyor.runlog.file import FileRunLogStore
from conveyor.runlog.records import Status
from conveyor.ui.views import RunView
from support import TASKS, run_cli

MAP = """
dag:
  start_at: first
  steps:
    first: {command: endtasks.quick, next: fan}
    fan:
      type: map
      iterate_on: xs
      iterate_as: x
      max_parallelism: 3
      next: success
      branch:
        start_at: nap
        steps:
          nap: {command: endtasks.nap_until, next: after}
          after: {command: endtasks.quick, next: success}
"""


def _start(workdir: Path, config: Path, run_id: str) -> subprocess.Popen[bytes]:
    (workdir / "pipeline.yaml").write_text(MAP)
    (workdir / "params.yaml").write_text(f"x: 0\nxs: [0, 1, 2, 3, 4]\nmarker: {workdir / 'go'}\n")
    env = dict(os.environ, **_env())
    argv = [sys.executable, "-m", "conveyor.cli", "execute", "-q", "-f", "pipeline.yaml", "-c", str(config)]
    proc = subprocess.Popen(
        [*argv, "-p", "params.yaml", "--run-id", run_id],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    events = workdir / "runs" / run_id / "events.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline:  # three items napping, their start events written
        if events.exists() and events.read_text().count('"e":"start","path":["fan"') >= 3:
            return proc
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("the map's items did not start")


def _env() -> dict[str, str]:
    return {"PYTHONPATH": os.pathsep.join(p for p in [str(TASKS), os.environ.get("PYTHONPATH")] if p)}


def _open(log: RunLog) -> list[str]:
    return [
        "/".join(k)
        for k, r in log.steps.items()
        if r.status is Status.RUNNING or any(a.status is Status.RUNNING for a in r.attempts)
    ]


def _show(workdir: Path, config: Path, run_id: str) -> str:
    shown = run_cli("runs", "show", run_id, "-c", str(config), "--items", "10", cwd=workdir)
    assert shown.returncode == 0, shown.stderr
    return shown.stdout


def _view_data(view: RunView) -> dict[str, object]:
    view.refresh()
    with view.lock:
        items = {"/".join(k): e for k, e in view.items.items()}
        return {"header": view.header(), "tree": view.tree(), "gantt": view.gantt(), "items": items}


@pytest.mark.parametrize("how", ["kill", "interrupt"])
def test_a_stopped_execute_leaves_nothing_running(workdir: Path, file_config: Path, how: str) -> None:
    run_id = f"ended-{how}"
    proc = _start(workdir, file_config, run_id)
    if how == "kill":
        os.killpg(proc.pid, signal.SIGKILL)
    else:
        os.kill(proc.pid, signal.SIGINT)  # the user's Ctrl-C: the engine records the ending
    proc.wait(timeout=60)
    store = FileRunLogStore(str(workdir / "runs"))
    raw = store.load(run_id)  # no settling: what the store itself holds
    if how == "interrupt":
        assert raw.run.status is Status.INTERRUPTED and _open(raw) == []
        nap = raw.steps[("fan", "0", "nap")].last
        assert nap is not None and nap.status is Status.INTERRUPTED and nap.end == raw.run.ended_at
    else:
        assert raw.run.status is Status.RUNNING and "fan/0/nap" in _open(raw)  # died without a word

    # runs show: nothing running, the same figures a moment later (durations do not grow)
    first = _show(workdir, file_config, run_id)
    view = RunView(store, run_id)
    before = json.dumps(_view_data(view), default=str, sort_keys=True)
    time.sleep(1.2)
    again = _show(workdir, file_config, run_id)
    assert first == again, "runs show changed while nothing ran"
    rows = [line for line in first.splitlines() if "│" in line]
    assert not any(" running " in row for row in rows), first
    assert sum(" interrupted " in row for row in rows) >= 4, first  # 3 items' naps + the map
    assert "interrupted" in first.splitlines()[0]

    # the UI's run data: no step or item running, the duration fixed, progress says stopped
    after = json.dumps(_view_data(view), default=str, sort_keys=True)
    assert before == after
    assert view.status is Status.INTERRUPTED
    assert not any(e.status is Status.RUNNING for e in view.items.values())
    assert not any(r.status is Status.RUNNING for r in view.steps.values())
    assert all(n == 0 for counts in view.counts.values() for s, n in counts.items() if s == Status.RUNNING)
    fresh = RunView(store, run_id)  # a view made after the end reads the same
    assert json.dumps(_view_data(fresh), default=str, sort_keys=True) == after
    progress = view.progress()
    assert progress["items_running"] == 0 and progress["items_stopped"] == 3, progress
    assert progress["steps_succeeded"] == 1 and progress["steps_stopped"] == 1, progress
    assert view.node_state(("fan",), "map")["counts"] == {"interrupted": 3, "pending": 2}

    # retry: the old attempts are recorded as interrupted, the new ones run to the end
    (workdir / "go").touch()
    done = run_cli("retry", run_id, "-c", str(file_config), cwd=workdir, env=_env())
    assert done.returncode == 0, done.stdout + done.stderr
    raw = store.load(run_id)
    assert raw.run.status is Status.SUCCEEDED and _open(raw) == []
    nap = raw.steps[("fan", "0", "nap")]
    assert nap.status is Status.SUCCEEDED
    assert [a.status for a in nap.attempts] == [Status.INTERRUPTED, Status.SUCCEEDED]
