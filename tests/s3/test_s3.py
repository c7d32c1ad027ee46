"""The catalog, pipeline inputs and the run log (file store) on S3, through s3fs, against an
S3 endpoint on loopback (moto in server mode) that the tests start."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.spec.load import config_from_data
from support import need_service
from support.runs import retry, run_yaml, runlog, step
from support.services import S3

pytestmark = pytest.mark.s3


@pytest.fixture(scope="module")
def s3() -> Iterator[S3]:
    try:
        server = S3().start()
        import s3fs  # noqa: F401
    except Exception as exc:  # no moto, no s3fs, or the port would not open
        need_service("s3", f"the S3 endpoint could not start: {exc}")
    yield server
    server.stop()


@pytest.fixture
def bucket(s3: S3) -> str:
    return s3.bucket("b-" + uuid.uuid4().hex[:10])


def s3_config(s3: S3, bucket: str) -> object:
    return config_from_data(
        {
            "run_log_store": {
                "type": "file",
                "config": {"path": f"s3://{bucket}/runs", "storage_options": s3.options},
            },
            "catalog": {
                "type": "file",
                "config": {"location": f"s3://{bucket}/catalog", "storage_options": s3.options},
            },
        }
    )


def test_partitioned_map_over_s3_inputs_with_catalog_and_run_log_on_s3(
    workdir: Path, s3: S3, bucket: str
) -> None:
    import s3fs

    fs = s3fs.S3FileSystem(**s3.options)  # type: ignore[arg-type]
    for i in range(23):
        fs.pipe(f"{bucket}/in/day{i % 2}/img{i:03d}.tif", b"x" * (i + 1))
    options = json.dumps(s3.options)
    text = f"""dag:
  start_at: each
  steps:
    each:
      type: map
      partition: {{source: "s3://{bucket}/in/**/*.tif", strategy: count, size: 10, storage_options: {options}}}
      iterate_as: files
      branch: {{start_at: work, steps: {{work: {{command: ctasks.count_files, returns: [n], next: success}}}}}}
      next: report
    report: {{command: ctasks.record, returns: [done], catalog: {{put: [out.txt]}}, next: success}}
"""
    (workdir / "out.txt").write_text("report")
    config = s3_config(s3, bucket)
    result = run_yaml(workdir, text, {"counter": str(workdir / "counter"), "tag": "t"}, config=config)  # type: ignore[arg-type]
    assert result.ok
    assert result.parameters["n"] == [10, 10, 3]
    files = [f for f in (workdir / "counter").read_text().splitlines() if f.endswith(".tif")]
    assert sorted(files) == sorted(f"img{i:03d}.tif" for i in range(23))
    log = runlog(workdir, result.run_id, config)  # type: ignore[arg-type]
    assert log.run.status == "succeeded"
    (entry,) = step(log, "report").attempts[0].catalog
    assert entry["location"].startswith(f"s3://{bucket}/catalog/") and fs.cat(entry["location"]) == b"report"
    info = step(log, "each").info
    assert all(loc.startswith(f"s3://{bucket}/catalog/") for loc in info["locations"])
    assert fs.exists(f"{bucket}/runs/{result.run_id}/run.json")


def test_resume_with_the_run_log_on_s3(workdir: Path, s3: S3, bucket: str) -> None:
    text = """dag:
  start_at: one
  steps:
    one: {command: ctasks.record, returns: [first], next: two}
    two: {command: ctasks.flaky, returns: [second], next: success}
"""
    counter = workdir / "counter"
    config = s3_config(s3, bucket)
    first = run_yaml(workdir, text, {"counter": str(counter), "tag": "one", "fail_times": 2}, config=config)  # type: ignore[arg-type]
    assert first.status == "failed"
    second = retry(workdir, first.run_id, config)  # type: ignore[arg-type]
    assert second.ok
    assert counter.read_text().splitlines() == ["one", "call", "call"]
    log = runlog(workdir, first.run_id, config)  # type: ignore[arg-type]
    assert [a.status for a in step(log, "two").attempts] == ["failed", "succeeded"]
    assert log.run.resumed == 1


def test_a_run_id_is_created_once_on_s3(s3: S3, bucket: str) -> None:
    from conveyor.runlog.base import RunExistsError
    from conveyor.runlog.file import file_store
    from conveyor.runlog.records import RunRecord

    store = file_store(f"s3://{bucket}/runs", s3.options)
    store.save_run(RunRecord(run_id="only", started_at=1.0), create=True)
    with pytest.raises(RunExistsError):
        store.save_run(RunRecord(run_id="only", started_at=2.0), create=True)
    assert store.load("only").run.started_at == 1.0
