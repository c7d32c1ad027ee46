"""Partitioned maps on the local executor: listing, grouping, manifests in the catalog,
outcomes per partition, retry of failed partitions, incremental runs, item errors."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from conveyor.spec.errors import SpecError
from conveyor.spec.load import load_pipeline_text
from conveyor.spec.models import PartitionSpec
from conveyor.step.partitions import FileItem, group
from support import TASKS, run_cli
from support.runs import file_config, retry, run_yaml, runlog, step, steps_of, variant

PIPELINE = """dag:
  start_at: each
  steps:
    each:
      type: map
      partition: {source: "data/*.txt", strategy: count, size: 10}
      iterate_as: files
      branch: {start_at: work, steps: {work: {command: ctasks.count_files, returns: [n], next: success}}}
      next: success
"""


def make_files(root: Path, count: int, start: int = 0) -> None:
    (root / "data").mkdir(exist_ok=True)
    for i in range(start, start + count):
        (root / "data" / f"f{i:03d}.txt").write_text("x" * (i + 1))


def pipeline(root: Path, task: str = "count_files", **options: Any) -> str:
    """The partitioned map over ``root/data/*.txt``, with map options and its task set."""

    def change(data: dict[str, Any]) -> None:
        each = steps_of(data)["each"]
        each["partition"]["source"] = str(root / "data" / "*.txt")
        each.update(options)
        each["branch"]["steps"]["work"]["command"] = f"ctasks.{task}"

    return variant(PIPELINE, change)


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_partitions_from_a_glob(workdir: Path) -> None:
    make_files(workdir, 25)
    counter = workdir / "counter"
    result = run_yaml(workdir, pipeline(workdir), {"counter": str(counter)})
    assert result.ok
    assert result.parameters["n"] == [10, 10, 5]
    assert sorted(lines(counter)) == [f"f{i:03d}.txt" for i in range(25)]
    info = step(runlog(workdir, result.run_id), "each").info
    assert info["partitions"] == 3 and info["sizes"] == [10, 10, 5] and info["failed"] == 0
    assert all(
        Path(loc.removeprefix("file://")).exists() for loc in info["locations"]
    )  # manifests in the catalog


def test_partitions_from_a_parameter(workdir: Path) -> None:
    text = variant(
        pipeline(workdir), lambda d: steps_of(d)["each"].update(partition={"parameter": "names", "size": 10})
    )
    result = run_yaml(workdir, text, {"names": [f"n{i}" for i in range(23)], "counter": str(workdir / "c")})
    assert result.ok and result.parameters["n"] == [10, 10, 3]


def test_grouping_strategies() -> None:
    items = [
        FileItem(f"s3://b/{day}/img{i}.tif", size=100 * (i + 1)) for day in ("d1", "d2") for i in range(3)
    ]
    by_bytes = group(items, PartitionSpec(source="x", strategy="bytes", target_bytes=500))
    # Sizes in URL order: 100, 200, 300 (d1) then 100, 200, 300 (d2); greedy up to 500 bytes.
    assert [sum(i.size or 0 for i in g) for g in by_bytes] == [300, 400, 500]
    by_day = group(items, PartitionSpec(source="x", strategy="group-by", pattern=r"/(d\d)/"))
    assert [[i.url.split("/")[3] for i in g] for g in by_day] == [["d1"] * 3, ["d2"] * 3]


def test_partition_spec_is_validated() -> None:
    for fields, message in [
        ({"partition": {"source": "x"}, "iterate_on": "xs"}, "exactly one of 'iterate_on'"),
        ({"partition": {"source": "x", "strategy": "bytes"}}, "strategy 'bytes' needs 'target_bytes'"),
        ({"partition": {"source": "x", "parameter": "y"}}, "exactly one of 'source'"),
        (
            {"partition": {"source": "x", "strategy": "group-by", "pattern": "nogroup"}},
            "pattern needs a capture group",
        ),
        (
            {"partition": None, "iterate_on": "xs", "incremental": True},
            "'incremental: true' needs a 'partition' spec",
        ),
    ]:

        def change(data: dict[str, Any], fields: dict[str, Any] = fields) -> None:
            each = steps_of(data)["each"]
            each.update(fields)
            if each["partition"] is None:
                del each["partition"]

        text = variant(PIPELINE, change)
        with pytest.raises(SpecError) as info:
            load_pipeline_text(text)
        assert any(message in i.message for i in info.value.issues), info.value


def test_item_failures_can_continue(workdir: Path) -> None:
    make_files(workdir, 25)
    counter = workdir / "counter"
    text = pipeline(workdir, task="fail_on", on_item_failure="continue")
    result = run_yaml(workdir, text, {"counter": str(counter), "bad": "f012.txt"})
    assert result.ok
    assert result.parameters["n"] == [10, 5]  # the failed partition is left out of the reduce
    info = step(runlog(workdir, result.run_id), "each").info
    assert info["failed"] == 1 and info["failed_items"] == [1]
    config = workdir / "c.yaml"
    config.write_text(f"run_log_store: {{type: file, config: {{path: {workdir / 'runs'}}}}}\n")
    shown = run_cli("runs", "show", result.run_id, "-c", str(config), cwd=workdir)
    assert "3 items, 1 failed" in shown.stdout and "failed items: 1" in shown.stdout


def test_retry_reprocesses_only_failed_partitions(workdir: Path) -> None:
    make_files(workdir, 25)
    counter = workdir / "counter"
    text = pipeline(workdir, task="fail_on")
    first = run_yaml(workdir, text, {"counter": str(counter), "bad": "f012.txt"})
    assert first.status == "failed"
    assert len(lines(counter)) == 15
    # The bad file is repaired in place; the partition plan (its manifests) is reused on retry.
    (workdir / "data" / "f012.txt").rename(workdir / "data" / "f012.bak")
    import ctasks

    original = ctasks.fail_on
    ctasks.fail_on = lambda files, bad, counter: original(files, "none", counter)  # type: ignore[assignment]
    try:
        second = retry(workdir, first.run_id)
    finally:
        ctasks.fail_on = original  # type: ignore[assignment]
    assert second.ok and second.parameters["n"] == [10, 10, 5]
    assert len(lines(counter)) == 25 and lines(counter).count("f000.txt") == 1  # partition 0 ran once


def test_incremental_runs_process_only_new_or_changed_files(workdir: Path) -> None:
    make_files(workdir, 12)
    counter = workdir / "counter"
    text = pipeline(workdir, incremental=True)
    config = file_config(workdir)
    first = run_yaml(workdir, text, {"counter": str(counter)}, config=config)
    assert first.ok and len(lines(counter)) == 12
    make_files(workdir, 3, start=12)  # new files
    changed = workdir / "data" / "f000.txt"
    changed.write_text("changed content")
    os.utime(changed, (time.time() + 10, time.time() + 10))
    counter.unlink()
    second = run_yaml(workdir, text, {"counter": str(counter)}, config=config)
    assert second.ok
    assert sorted(lines(counter)) == ["f000.txt", "f012.txt", "f013.txt", "f014.txt"]
    info = step(runlog(workdir, second.run_id), "each").info
    assert info["skipped"] == 11
    counter.unlink()
    third = run_yaml(workdir, text, {"counter": str(counter)}, config=config)
    assert third.ok and lines(counter) == [] and third.parameters["n"] == []


def test_preview(workdir: Path) -> None:
    make_files(workdir, 25)
    (workdir / "pipeline.yaml").write_text(pipeline(workdir))
    out = run_cli("partitions", "-f", "pipeline.yaml", "each", cwd=workdir, env={"PYTHONPATH": str(TASKS)})
    assert out.returncode == 0, out.stderr
    assert "25 items in 3 partitions (count)" in out.stdout
    assert "min 5, median 10, max 10" in out.stdout and "f000.txt" in out.stdout
    bad = run_cli("partitions", "-f", "pipeline.yaml", "nope", cwd=workdir)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
