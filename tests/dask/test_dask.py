"""The Dask executor on a real scheduler and two worker processes on loopback."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from conveyor.spec.load import config_from_data
from support import TASKS, need_service
from support.runs import run_yaml, runlog, step, steps_of, variant

pytestmark = pytest.mark.dask

MAP = """dag:
  start_at: fan
  steps:
    fan:
      type: map
      iterate_on: xs
      iterate_as: x
      max_parallelism: 4
      branch: {start_at: t, steps: {t: {command: ctasks.pid, returns: [y], next: success}}}
      next: total
    total: {command: ctasks.concat, returns: [joined], next: success}
"""


def map_with(limit: int, task: str) -> str:
    def change(data: dict[str, Any]) -> None:
        fan = steps_of(data)["fan"]
        fan["max_parallelism"] = limit
        fan["branch"]["steps"]["t"]["command"] = task

    return variant(MAP, change)


@pytest.fixture(scope="module")
def cluster() -> object:
    try:
        from distributed import LocalCluster
    except ImportError as exc:
        need_service("dask", f"dask.distributed is not installed: {exc}")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(TASKS), os.environ.get("PYTHONPATH", "")])
    try:
        local = LocalCluster(
            n_workers=2, threads_per_worker=2, processes=True, host="127.0.0.1", dashboard_address=None
        )
    except Exception as exc:  # the cluster could not start here
        need_service("dask", f"a Dask cluster could not start on loopback: {exc}")
    yield local
    local.close()


def dask_config(root: Path, address: str, **extra: object) -> object:
    return config_from_data(
        {
            "executor": {"type": "dask", "config": {"address": address, **extra}},
            "run_log_store": {"type": "file", "config": {"path": str(root / "runs")}},
            "catalog": {"type": "file", "config": {"location": str(root / "catalog")}},
        }
    )


def test_map_items_run_on_worker_processes(workdir: Path, cluster: object) -> None:
    text = MAP
    address = cluster.scheduler_address  # type: ignore[attr-defined]
    config = dask_config(workdir, address)
    result = run_yaml(workdir, text, {"xs": list(range(12)), "values": []}, config=config)  # type: ignore[arg-type]
    assert result.ok, result
    pids = set(result.parameters["y"])
    assert os.getpid() not in pids and len(pids) == 2  # both worker processes took items


def test_max_parallelism_is_honoured(workdir: Path, cluster: object) -> None:
    text = map_with(limit=2, task="ctasks.sleep_for")
    config = dask_config(workdir, cluster.scheduler_address)  # type: ignore[attr-defined]
    result = run_yaml(workdir, text, {"xs": list(range(6)), "seconds": 0.3, "values": []}, config=config)  # type: ignore[arg-type]
    assert result.ok
    log = runlog(workdir, result.run_id, config)  # type: ignore[arg-type]
    spans = [
        (
            step(log, "fan", str(i), "t").attempts[0].start,
            step(log, "fan", str(i), "t").attempts[0].end,
        )
        for i in range(6)
    ]
    peak = max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)
    assert peak <= 2


def test_killed_worker_items_finish_elsewhere_recorded_once(workdir: Path, cluster: object) -> None:
    from distributed import Client

    address = cluster.scheduler_address  # type: ignore[attr-defined]
    config = dask_config(workdir, address)
    counter = workdir / "counter"
    text = map_with(limit=4, task="ctasks.slow_item")
    with Client(address) as client:
        pids = client.run(os.getpid)
        killed: list[int] = []

        def kill_soon() -> None:
            """Once items are running, kill a worker that is running one of them."""
            deadline = time.time() + 20
            while time.time() < deadline:
                if counter.exists() and len(counter.read_text().splitlines()) >= 3:
                    busy = [addr for addr, tasks in client.processing().items() if tasks and addr in pids]
                    if busy:
                        killed.append(pids[busy[0]])
                        os.kill(pids[busy[0]], signal.SIGKILL)
                        return
                time.sleep(0.05)

        killer = threading.Thread(target=kill_soon)
        killer.start()
        result = run_yaml(
            workdir, text, {"xs": list(range(16)), "counter": str(counter), "values": []}, config=config
        )  # type: ignore[arg-type]
        killer.join()
        client.wait_for_workers(2, timeout=60)
        after = client.run(os.getpid)
    assert len(killed) == 1 and killed[0] not in after.values()  # it died; its nanny started another
    assert result.ok, result
    assert result.parameters["y"] == list(range(16))
    log = runlog(workdir, result.run_id, config)  # type: ignore[arg-type]
    for i in range(16):
        assert len(step(log, "fan", str(i), "t").attempts) == 1  # nothing recorded twice
    starts = counter.read_text().splitlines()
    assert len(starts) > 16  # items in flight on the killed worker ran again elsewhere


def test_loop_iterates_on_the_cluster(workdir: Path, cluster: object) -> None:
    from executors.test_loop import LOOP

    config = dask_config(workdir, cluster.scheduler_address)  # type: ignore[attr-defined]
    params = {"total": 0, "stop_at": 2, "fail_at": -1, "marker": str(workdir / "m")}
    result = run_yaml(workdir, LOOP, params, config=config)  # type: ignore[arg-type]
    # loop_body checks that the index reached the worker as parameter and environment variable
    assert result.ok and result.parameters["total"] == 3
    assert step(runlog(workdir, result.run_id, config), "grow").info["iterations"] == 3  # type: ignore[arg-type]


def test_a_cache_filled_locally_is_hit_on_the_cluster(workdir: Path, cluster: object) -> None:
    from conveyor.spec.load import config_from_data

    def cached(data: dict[str, Any]) -> None:
        data["dag"]["cache"] = True

    text = variant(MAP, cached)
    params = {"xs": [1, 2, 3], "values": []}
    local = config_from_data(
        {
            "run_log_store": {"type": "file", "config": {"path": str(workdir / "runs")}},
            "catalog": {"type": "file", "config": {"location": str(workdir / "catalog")}},
        }
    )
    first = run_yaml(workdir, text, params, config=local)
    assert first.ok
    on_dask = dask_config(workdir, cluster.scheduler_address)  # type: ignore[attr-defined]
    second = run_yaml(workdir, text, params, config=on_dask)  # type: ignore[arg-type]
    assert second.ok and second.parameters["y"] == first.parameters["y"]  # the pids of the local run
    log = runlog(workdir, second.run_id, on_dask)  # type: ignore[arg-type]
    hits = [r.info["cached"]["run"] for k, r in log.steps.items() if r.type == "task" and "cached" in r.info]
    assert len(hits) == 4 and set(hits) == {first.run_id}
