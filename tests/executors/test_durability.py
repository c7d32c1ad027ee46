"""A run log store's ``durability``: when events are written and synced, and what a killed
process leaves (strict and batched: everything recorded; relaxed: all but the last group)."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from conveyor.executors.run import execute
from conveyor.runlog.base import RunLogUnwritable
from conveyor.runlog.file import FileRunLogStore
from conveyor.runlog.records import Event, Status
from conveyor.spec.load import load_pipeline
from support import TASKS, run_cli
from support.runs import file_config

MAP = """dag:
  start_at: list
  steps:
    list: {command: ctasks.numbers, returns: [xs], next: fan}
    fan:
      type: map
      iterate_on: xs
      iterate_as: x
      branch:
        start_at: sq
        steps:
          sq: {command: ctasks.square, returns: [y], next: success}
      next: success
"""


class CountingStore(FileRunLogStore):
    """The real file store, counting its appends and syncs (and failing appends on demand)."""

    def __init__(self, path: str, durability: str, fail_after: int | None = None) -> None:
        super().__init__(path)
        self.durability = durability  # type: ignore[assignment]
        self.appends = self.syncs = self.events = 0
        self.fail_after = fail_after

    def append(self, run_id: str, events: Sequence[Event]) -> None:
        if self.fail_after is not None and self.appends >= self.fail_after:
            raise OSError(28, "No space left on device")
        self.appends += 1
        self.events += len(events)
        super().append(run_id, events)

    def sync(self, run_id: str) -> None:
        self.syncs += 1
        super().sync(run_id)


def _run(tmp_path: Path, store: FileRunLogStore, n: int = 300) -> Status:
    (tmp_path / "pipeline.yaml").write_text(MAP)
    result = execute(
        load_pipeline(tmp_path / "pipeline.yaml"),
        file_config(tmp_path),
        {"n": n},
        run_id="d1",
        store=store,
    )
    return result.status


@pytest.mark.parametrize("durability", ["strict", "batched", "relaxed"])
def test_every_level_records_every_item(tmp_path: Path, durability: str) -> None:
    store = CountingStore(str(tmp_path / "runs"), durability)
    assert _run(tmp_path, store) is Status.SUCCEEDED
    log = FileRunLogStore(str(tmp_path / "runs")).load("d1")
    items = [k for k in log.steps if k[0] == "fan" and len(k) == 3]
    assert len(items) == 300 and all(log.steps[k].status is Status.SUCCEEDED for k in items)
    assert log.run.final_parameters["y"] == [x * x for x in range(300)]
    per_item = 300 + 2  # an append per attempt (start and end together), the map's two node events
    if durability == "strict":
        assert store.appends >= per_item and store.syncs >= store.appends  # each on disk before going on
    elif durability == "batched":
        assert store.appends >= per_item  # each written before going on
        assert 1 <= store.syncs < store.appends  # synced by groups
    else:
        assert store.appends < per_item / 5, store.appends  # written by groups
        assert store.syncs == 0


def test_a_relaxed_store_failing_in_the_background_fails_the_run(tmp_path: Path) -> None:
    store = CountingStore(str(tmp_path / "runs"), "relaxed", fail_after=0)
    with pytest.raises(RunLogUnwritable, match="No space left on device"):
        _run(tmp_path, store)
    run = FileRunLogStore(str(tmp_path / "runs")).load("d1").run
    assert run.status is Status.FAILED and "No space left on device" in (run.error or "")


@pytest.mark.parametrize("command", ["execute", "validate"])
def test_an_unknown_durability_is_a_config_error(workdir: Path, command: str) -> None:
    (workdir / "pipeline.yaml").write_text(MAP)
    (workdir / "config.yaml").write_text(
        "run_log_store:\n  type: file\n  config:\n    path: runs\n    durability: relaxd\n"
    )
    out = run_cli(command, "--no-import", "-f", "pipeline.yaml", "-c", "config.yaml", cwd=workdir)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "config.yaml:5: run_log_store.config.durability:" in out.stderr, out.stderr
    assert "expected one of 'strict', 'batched' or 'relaxed', found 'relaxd'" in out.stderr
    assert "did you mean 'relaxed'?" in out.stderr
    assert "Traceback" not in out.stderr


KILLED = """dag:
  start_at: fan
  steps:
    fan:
      type: map
      iterate_on: xs
      iterate_as: x
      max_parallelism: 1
      branch:
        start_at: item
        steps:
          item: {command: ctasks.die_at, returns: [y], next: success}
      next: success
"""


def test_relaxed_loses_at_most_the_last_group_to_sigkill(workdir: Path) -> None:
    """Killed mid-map, a relaxed run may not have written the items that ended in its last
    group: retry runs those again (never fewer than once, never a recorded one twice)."""
    (workdir / "pipeline.yaml").write_text(KILLED)
    counter = workdir / "counter"
    (workdir / "params.yaml").write_text(
        f"counter: {counter}\nmarker: {workdir / 'marker'}\nxs: [0, 1, 2, 3, 4]\nat: 2\n"
    )
    runs = workdir / "runs"
    (workdir / "config.yaml").write_text(
        f"run_log_store: {{type: file, config: {{path: {runs}, durability: relaxed}}}}\n"
    )
    env = {"PYTHONPATH": str(TASKS) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    args = ["-f", "pipeline.yaml", "-c", "config.yaml"]
    killed = run_cli("execute", *args, "-p", "params.yaml", "--run-id", "k", cwd=workdir, env=env)
    assert killed.returncode == -9, killed.stderr
    recorded = FileRunLogStore(str(runs)).load("k")
    written = {k[1] for k, r in recorded.steps.items() if len(k) == 3 and r.status is Status.SUCCEEDED}
    assert written <= {"0", "1"}
    again = run_cli("retry", "k", "-c", "config.yaml", cwd=workdir, env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    ran = counter.read_text().splitlines()
    for x in range(5):
        times = ran.count(f"item-{x}")
        assert times == (1 if str(x) in written or x >= 2 else times) and 1 <= times <= 2, ran
    final = FileRunLogStore(str(runs)).load("k")
    assert final.run.status is Status.SUCCEEDED and final.run.final_parameters["y"] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("durability", ["batched", "relaxed"])
def test_events_reach_the_store_within_the_window_while_the_run_goes_on(
    tmp_path: Path, durability: str
) -> None:
    """Without waiting for the run's end: what a relaxed writer gathered is written within
    RELAXED_WINDOW of its first event, group after group (not only when a group fills)."""
    from conveyor.executors.storewriter import RELAXED_WINDOW, StoreWriter
    from conveyor.runlog.records import EndEvent, RunRecord, StartEvent

    store = FileRunLogStore(str(tmp_path / "runs"))
    store.durability = durability  # type: ignore[assignment]
    store.save_run(RunRecord(run_id="w1", status=Status.RUNNING), create=True)
    writer = StoreWriter(store, "w1")
    try:
        for group in range(3):
            for n in range(5):
                path = ["fan", str(group * 5 + n), "sq"]
                writer.receive([StartEvent(path, 1, 0.0), EndEvent(path, 1, 0.0, Status.SUCCEEDED)])
            deadline = time.monotonic() + RELAXED_WINDOW * 20
            while time.monotonic() < deadline and len(store.load("w1").steps) < (group + 1) * 5:
                time.sleep(RELAXED_WINDOW / 5)
            assert len(store.load("w1").steps) == (group + 1) * 5, (group, durability)
    finally:
        writer.drain()
        writer.close()
