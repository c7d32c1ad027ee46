"""``isolation: pool``: steps in a few long-lived processes, still isolated from the engine."""

from __future__ import annotations

import os
import pickle
import time
from pathlib import Path

import pytest

from conveyor.spec.models import TaskNode
from conveyor.step.capture import Redactor, Sink
from conveyor.step.pool import RunnerPool
from conveyor.step.request import StepRequest
from support.runs import file_config, run_yaml, runlog

MAP = """dag:
  start_at: fan
  steps:
    fan:
      type: map
      iterate_on: items
      iterate_as: x
      branch:
        start_at: one
        steps:
          one: {command: pooltasks.crash_on, returns: [pid], next: success}
      next: success
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_items_share_a_few_processes_and_a_crash_fails_its_item_alone(tmp_path: Path) -> None:
    config = file_config(tmp_path, isolation="pool", max_workers=2)
    result = run_yaml(tmp_path, MAP, {"items": list(range(40)), "bad": 7}, config=config)
    log = runlog(tmp_path, result.run_id)
    items = {tuple(path): record for path, record in log.steps.items() if path[-1] == "one"}
    assert len(items) == 40
    failed = [path for path, record in items.items() if record.status != "succeeded"]
    assert failed == [("fan", "7", "one")], failed
    crashed = items["fan", "7", "one"].attempts[-1]
    assert crashed.error == "the step's process died with exit code 3"
    assert "item 7 in" in Path(str(crashed.log)).read_text()  # its output up to the crash is kept
    pids = {record.attempts[-1].returns["pid"] for path, record in items.items() if path[1] != "7"}
    assert os.getpid() not in pids  # never the engine's process
    assert 1 <= len(pids) <= 3, pids  # not a process per item; one replaced after the crash
    for x in (3, 30):  # each item's output in its own log, nothing of another's
        text = Path(str(items["fan", str(x), "one"].attempts[-1].log)).read_text()
        assert text.strip() == f"item {x} in {items['fan', str(x), 'one'].attempts[-1].returns['pid']}"


def test_what_a_step_leaves_running_ends_with_it(tmp_path: Path) -> None:
    pids = tmp_path / "left"
    text = (
        "dag:\n  start_at: a\n  steps:\n"
        "    a: {command: pooltasks.leave_behind, returns: [pid], next: success}\n"
    )
    config = file_config(tmp_path, isolation="pool")
    assert run_yaml(tmp_path, text, {"pids": str(pids)}, config=config).ok
    pid = int(pids.read_text())
    deadline = time.time() + 10
    while _alive(pid) and time.time() < deadline:
        time.sleep(0.05)
    assert not _alive(pid)


def test_the_pool_grows_for_steps_that_take_long(tmp_path: Path) -> None:
    text = MAP.replace("pooltasks.crash_on", "pooltasks.nap")
    config = file_config(tmp_path, isolation="pool", max_workers=4)
    started = time.perf_counter()
    result = run_yaml(tmp_path, text, {"items": list(range(4)), "seconds": 2.5}, config=config)
    took = time.perf_counter() - started
    assert result.ok
    log = runlog(tmp_path, result.run_id)
    pids = {r.attempts[-1].returns["pid"] for p, r in log.steps.items() if p[-1] == "one"}
    assert len(pids) >= 2, pids  # more than one process served the waiting items
    assert took < 4 * 2.5, took  # and so faster than one after another


SECRET = "CONVEYOR_TEST_POOL_SECRET_7F3A"


def test_no_pool_process_starts_with_a_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The declaring step gets the secret in a process of its own; the pool's processes
    (one started ahead of the steps) never have it in their environment."""
    monkeypatch.setenv(SECRET, "pool-secret-value-42")
    text = (
        "dag:\n  start_at: declares\n  steps:\n"
        f"    declares: {{command: hostile.secret_seen, secrets: [{SECRET}], returns: [mine], next: other}}\n"
        "    other: {command: hostile.secret_seen, returns: [theirs], next: success}\n"
    )
    config = file_config(tmp_path, isolation="pool")
    result = run_yaml(tmp_path, text, {"name": SECRET}, config=config)
    assert result.ok
    assert result.parameters["mine"]["env"] is True
    assert result.parameters["theirs"] == {"env": False, "elsewhere": False}


def test_a_step_definition_goes_to_a_process_once(tmp_path: Path) -> None:
    """After the first item, a pool process is sent only the item (its parameters, path):
    it keeps the definitions it was sent, and each item still runs its own step's."""
    nodes = [TaskNode(command="pooltasks.crash_on", returns=[name], next="success") for name in ("a", "b")]
    pool = RunnerPool(1)
    try:
        for x in range(6):
            node = nodes[x % 2]
            request = StepRequest(node, {"x": x, "bad": -1}, ["s", str(x)], "run", tmp_path)
            runner = pool._take()
            sent = pickle.loads(runner.payload(request))[1]
            pool._give(runner, True)
            assert (sent is None) == (x >= 2), x  # each definition in full once, then named
            result = pool.launch(request, None, Sink(Redactor(), None))
            assert result.ok and list(result.values) == [node.returns[0].name], result
    finally:
        pool.close()
