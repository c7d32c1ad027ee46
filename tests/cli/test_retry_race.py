"""Many ``conveyor retry`` of one killed run at once: exactly one takes it over, in every run
log store, so every map item the killed run had not finished runs exactly once more.

Each item appends ``PID ITEM`` to a ledger per execution; the killed run's own lines are told
apart by its pid, so items it ran but had not recorded (killed mid-way) are not miscounted.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.executors.run import open_store
from conveyor.runlog.records import Status
from conveyor.spec.load import load_config
from support import TASKS, need_service
from support.services import S3, fresh_database

#: Items per run (fewer on S3, where each batch of events is a PUT to a local moto server).
ITEMS = {"file": 150, "sqlite": 150, "postgres": 150, "s3": 40}
RETRIES = 6
TRIALS = 2

PIPELINE = """
dag:
  start_at: fan
  steps:
    fan:
      type: map
      iterate_on: xs
      iterate_as: x
      max_parallelism: 4
      branch:
        start_at: item
        steps:
          item: {command: claimtasks.tick, returns: [y], next: success}
      next: success
"""


@pytest.fixture(scope="module")
def s3() -> Iterator[S3]:
    try:
        server = S3().start()
        import s3fs  # noqa: F401
    except Exception as exc:  # no moto, no s3fs, or the port would not open
        need_service("s3", f"the S3 endpoint could not start: {exc}")
    yield server
    server.stop()


def _store_section(kind: str, tmp: Path, request: pytest.FixtureRequest) -> dict[str, object]:
    if kind == "file":
        return {"type": "file", "config": {"path": str(tmp / "runs")}}
    if kind == "sqlite":
        return {"type": "sqlite", "config": {"path": str(tmp / "runs.db")}}
    if kind == "postgres":
        url = fresh_database(request.getfixturevalue("postgres_url"))
        return {"type": "postgres", "config": {"url": url}}
    s3: S3 = request.getfixturevalue("s3")
    bucket = s3.bucket("race-" + uuid.uuid4().hex[:10])
    return {"type": "file", "config": {"path": f"s3://{bucket}/runs", "storage_options": s3.options}}


def _cli(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TASKS), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(
        [sys.executable, "-m", "conveyor.cli", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _ledger(path: Path) -> list[tuple[int, int]]:
    return [(int(p), int(x)) for p, x in (line.split() for line in path.read_text().splitlines())]


@pytest.mark.parametrize(
    "kind",
    [
        "file",
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("s3", marks=pytest.mark.s3),
    ],
)
@pytest.mark.parametrize("trial", range(TRIALS))
def test_concurrent_retries_of_a_killed_map_run_each_item_once(
    kind: str, trial: int, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    items = ITEMS[kind]
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps({"run_log_store": _store_section(kind, tmp_path, request)}))
    (tmp_path / "pipeline.yaml").write_text(PIPELINE)
    ledger, marker = tmp_path / "ledger", tmp_path / "marker"
    params = {"xs": list(range(items)), "ledger": str(ledger), "kill_at": items // 4, "marker": str(marker)}
    (tmp_path / "params.yaml").write_text(json.dumps(params))
    run_id = f"race-{kind}-{trial}"
    files = ["-f", "pipeline.yaml", "-c", str(config)]

    killed = _cli(["execute", *files, "-p", "params.yaml", "--run-id", run_id, "-q"], tmp_path)
    killed.communicate(timeout=300)
    assert killed.returncode == -9 and marker.exists()
    store = open_store(load_config(config))
    before = store.load(run_id)
    store.close()
    assert before.status is Status.INTERRUPTED
    done_before = {
        int(path[-2]) for path, r in before.steps.items() if len(path) == 3 and r.status is Status.SUCCEEDED
    }
    assert 0 < len(done_before) < items

    retries = [_cli(["retry", run_id, "-c", str(config), "-q"], tmp_path) for _ in range(RETRIES)]
    outcomes = [(p.wait(timeout=600), p.communicate()[1]) for p in retries]
    winners = [err for code, err in outcomes if code == 0]
    losers = [err for code, err in outcomes if code != 0]
    assert len(winners) == 1, outcomes
    for err in losers:
        assert "still running" in err or "taken over" in err or "already succeeded" in err, err
        assert "Traceback" not in err, err

    retried = collections.Counter(x for pid, x in _ledger(ledger) if pid != before.run.pid)
    expected = {x: (0 if x in done_before else 1) for x in range(items)}
    assert {x: retried.get(x, 0) for x in range(items)} == expected
    store = open_store(load_config(config))
    after = store.load(run_id)
    store.close()
    assert after.status is Status.SUCCEEDED and after.run.final_parameters["y"] == list(range(items))


def test_a_driver_taken_over_writes_nothing_more_and_says_so(tmp_path: Path) -> None:
    (tmp_path / "pipeline.yaml").write_text(
        PIPELINE.replace("claimtasks.tick", "claimtasks.usurp").replace(
            "max_parallelism: 4", "max_parallelism: 1"
        )
    )
    runs = tmp_path / "runs"
    (tmp_path / "config.yaml").write_text(
        json.dumps({"run_log_store": {"type": "file", "config": {"path": str(runs)}}})
    )
    (tmp_path / "params.yaml").write_text(json.dumps({"xs": list(range(8)), "runs": str(runs), "at": 3}))
    done = _cli(
        ["execute", "-f", "pipeline.yaml", "-c", "config.yaml", "-p", "params.yaml", "--run-id", "r"],
        tmp_path,
    )
    _, err = done.communicate(timeout=300)
    assert done.returncode == 1, err
    assert "run 'r' in" in err and "was taken over by another process" in err and "Traceback" not in err
    log = open_store(load_config(tmp_path / "config.yaml")).load("r")
    assert (log.run.generation, log.run.host) == (1, "usurper")  # the driver's last save was refused
    items = {int(path[1]): record.status for path, record in log.steps.items() if len(path) == 3}
    # Item 3's end (its start, if it was written before the claim) and every item after: refused.
    assert {x: s for x, s in items.items() if s is Status.SUCCEEDED} == dict.fromkeys(
        [0, 1, 2], Status.SUCCEEDED
    )
    assert max(items) <= 3
