"""Step caching across runs: hits and misses for each part of the key, downstream steps
invalidated only when what they receive changed, map items one by one, and the safety
rules (failures, secrets, corruption, TTL, concurrent fills). Each run is a fresh `conveyor`
process, as a user's runs are (a changed module is read anew)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from conveyor.catalog.store import FsspecCatalog
from conveyor.runlog.file import FileRunLogStore
from conveyor.step.cache import BLOBS, entries
from support import run_cli
from support.runs import steps_of, variant

CONFIG = "run_log_store: {type: file}\ncatalog: {type: file}\n"
STEPS = """
import os
from pathlib import Path


def note(name):
    with open("calls.txt", "a") as handle:
        handle.write(name + "\\n")


def make(n: int, offset: int = 0) -> int:
    note("make")
    Path("made.txt").write_text(str(n))
    return n * 2 + offset


def item(x: int) -> int:
    note(f"item-{x}")
    return x * x


def fails(n: int) -> int:
    note("fails")
    raise RuntimeError("no")


def secretive(n: int) -> int:
    note("secretive")
    return n + len(os.environ["API_TOKEN"])
"""
PIPELINE = """dag:
  cache: true
  start_at: make
  steps:
    make: {command: csteps.make, returns: [doubled], catalog: {put: [made.txt]}, next: use}
    use: {command: cuse.use, returns: [{name: obj, kind: object}], next: success}
"""


# `use` lives in a module of its own that does not import csteps: editing csteps.py must not
# change its code's hash (editing a module it imports would: tests/step/test_cache_code.py).
USE = """def note(name):
    with open("calls.txt", "a") as handle:
        handle.write(name + "\\n")


def use(doubled: int) -> dict:
    note("use")
    return {"value": doubled + 1}


def use_twice(twice: int) -> dict:
    note("use")
    return {"value": twice}
"""


def project(tmp_path: Path, pipeline: str = PIPELINE, steps: str = STEPS) -> Path:
    (tmp_path / "csteps.py").write_text(steps)
    (tmp_path / "cuse.py").write_text(USE)
    (tmp_path / "pipeline.yaml").write_text(pipeline)
    (tmp_path / "config.yaml").write_text(CONFIG)
    return tmp_path


def run(
    where: Path, run_id: str, *extra: str, params: str = "n: 3\n", env: dict[str, str] | None = None
) -> int:
    (where / "params.yaml").write_text(params)
    out = run_cli(
        "execute", "-q", "-f", "pipeline.yaml", "-c", "config.yaml", "-p", "params.yaml", "--run-id", run_id,
        *extra, cwd=where, env=env,
    )  # fmt: skip
    return out.returncode


def calls(where: Path) -> list[str]:
    path = where / "calls.txt"
    text = path.read_text() if path.exists() else ""
    path.unlink(missing_ok=True)
    return text.split()


def cached(where: Path, run_id: str) -> dict[str, str]:
    """Step path -> the run its cached result came from, for the steps that hit."""
    log = FileRunLogStore(str(where / ".conveyor/runs")).load(run_id)
    return {"/".join(k): r.info["cached"]["run"] for k, r in log.steps.items() if "cached" in r.info}


def test_a_second_run_restores_everything_and_runs_nothing(tmp_path: Path) -> None:
    where = project(tmp_path)
    assert run(where, "first") == 0 and calls(where) == ["make", "use"]
    (where / "made.txt").unlink()
    assert run(where, "second") == 0
    assert calls(where) == []  # nothing executed
    assert cached(where, "second") == {"make": "first", "use": "first"}
    assert (where / "made.txt").read_text() == "3"  # the put file is back
    log = FileRunLogStore(str(where / ".conveyor/runs")).load("second")
    assert log.run.final_parameters["doubled"] == 6
    assert log.steps[("make",)].attempts[0].catalog[0]["name"] == "made.txt"
    assert (where / ".conveyor/catalog/second/made.txt").exists()  # later gets find it
    shown = run_cli("runs", "show", "second", "-c", "config.yaml", cwd=where).stdout
    assert "cached: from run first" in shown
    # an object return comes back as the object (a step after it can use it)
    obj = log.steps[("use",)].attempts[0].returns["obj"]
    assert obj["sha256"] and "$object" in obj


def _make_cache(spec: dict[str, Any]) -> str:
    return variant(PIPELINE, lambda d: steps_of(d)["make"].update(cache=spec))


def _twice(data: dict[str, Any]) -> None:
    steps_of(data)["make"]["returns"] = ["twice"]
    steps_of(data)["use"]["command"] = "cuse.use_twice"


@pytest.mark.parametrize(
    ("change", "missed"),
    [
        ("params", ["make", "use"]),  # n changes: make's input, then its output
        ("ignored", []),  # only a parameter the key ignores changes
        ("version", ["make"]),  # make's version bumped; same output, so `use` still hits
        ("definition", ["make", "use"]),  # make's returns renamed: `use` receives another name
        ("code-same-output", ["make"]),  # make's module edited, output unchanged: `use` hits
        ("code-new-output", ["make", "use"]),
    ],
)
def test_each_part_of_the_key_and_downstream_invalidation(
    change: str, missed: list[str], tmp_path: Path
) -> None:
    first = _make_cache({"version": "2", "ignore": ["offset"]})
    where = project(tmp_path, first)
    assert run(where, "first", params="n: 3\noffset: 0\n") == 0
    calls(where)
    params = "n: 3\noffset: 0\n"
    if change == "params":
        params = "n: 4\noffset: 0\n"
    elif change == "ignored":
        params = "n: 3\noffset: 5\n"
    elif change == "version":
        (where / "pipeline.yaml").write_text(_make_cache({"version": "3", "ignore": ["offset"]}))
    elif change == "definition":
        (where / "pipeline.yaml").write_text(variant(first, _twice))
    elif change == "code-same-output":
        (where / "csteps.py").write_text(STEPS.replace("return n * 2 + offset", "return offset + n * 2"))
    elif change == "code-new-output":
        (where / "csteps.py").write_text(STEPS.replace("return n * 2 + offset", "return n * 3 + offset"))
    assert run(where, "later", params=params) == 0
    assert calls(where) == missed


def test_steps_in_child_processes_fill_and_hit_the_same_cache(tmp_path: Path) -> None:
    where = project(tmp_path)
    (where / "config.yaml").write_text(CONFIG + "executor: {type: local, config: {isolation: process}}\n")
    assert run(where, "first") == 0 and calls(where) == ["make", "use"]
    (where / "config.yaml").write_text(CONFIG)
    assert run(where, "second") == 0 and calls(where) == []
    assert cached(where, "second") == {"make": "first", "use": "first"}


def test_a_changed_fetched_file_misses(tmp_path: Path) -> None:
    pipeline = """dag:
  cache: true
  start_at: write
  steps:
    write: {command: csteps.write, cache: false, catalog: {put: [data.txt]}, next: read}
    read: {command: csteps.read, catalog: {get: [data.txt]}, returns: [content], next: success}
"""
    more = """

def write(text: str) -> None:
    note("write")
    Path("data.txt").write_text(text)


def read() -> str:
    note("read")
    return Path("data.txt").read_text()
"""
    where = project(tmp_path, pipeline, STEPS + more)
    assert run(where, "a", params="text: one\n") == 0 and calls(where) == ["write", "read"]
    assert run(where, "b", params="text: one\n") == 0 and calls(where) == ["write"]  # same file: a hit
    assert run(where, "c", params="text: two\n") == 0 and calls(where) == ["write", "read"]


MAPPED = """dag:
  cache: true
  start_at: each
  steps:
    each:
      type: map
      iterate_on: xs
      iterate_as: x
      branch: {start_at: sq, steps: {sq: {command: csteps.item, returns: [y], next: success}}}
      next: success
"""


def test_map_items_are_cached_one_by_one(tmp_path: Path) -> None:
    where = project(tmp_path, MAPPED)
    assert run(where, "first", params=f"xs: {list(range(10))}\n") == 0
    assert len(calls(where)) == 10
    changed = [0, 1, 2, 3, 40, 5, 6, 7, 80, 9]
    assert run(where, "second", params=f"xs: {changed}\n") == 0
    assert sorted(calls(where)) == ["item-40", "item-80"]
    log = FileRunLogStore(str(where / ".conveyor/runs")).load("second")
    assert log.run.final_parameters["y"] == [x * x for x in changed]
    # The map's entries are together: one log for its step (12 lines: 10, then 2 new), and no
    # file per item; its lines' keys begin with the step's part.
    logs = list((where / ".conveyor/catalog/_shared/cache/steps").iterdir())
    assert len(logs) == 1 and not (where / ".conveyor/catalog/_shared/cache/entries").exists()
    lines = logs[0].read_text().splitlines()
    assert len(lines) == 12 and all(line.startswith(logs[0].stem) for line in lines)


def _partitioned(data: dict[str, Any]) -> None:
    each = steps_of(data)["each"]
    del each["iterate_on"]
    each.update(partition={"source": "data/*.txt", "strategy": "count", "size": 1}, iterate_as="files")
    each["branch"]["steps"]["sq"].update(command="csteps.sizes", returns=["n"])


def test_partitions_hit_unless_their_files_changed(tmp_path: Path) -> None:
    pipeline = variant(MAPPED, _partitioned)
    more = """

def sizes(files: list) -> int:
    note("part-" + os.path.basename(files[0]))
    return sum(os.path.getsize(f) for f in files)
"""
    where = project(tmp_path, pipeline, STEPS + more)
    (where / "data").mkdir()
    for n in range(4):
        (where / "data" / f"{n}.txt").write_text("x" * n)
    assert run(where, "first") == 0 and len(calls(where)) == 4
    assert run(where, "second") == 0 and calls(where) == []
    changed = where / "data" / "2.txt"
    changed.write_text("yy")  # same size, new content and modification time
    os.utime(changed, (time.time() + 5, time.time() + 5))
    assert run(where, "third") == 0 and calls(where) == ["part-2.txt"]


def test_failures_opt_outs_and_secrets(tmp_path: Path) -> None:
    pipeline = """dag:
  cache: true
  start_at: one
  steps:
    one: {command: csteps.make, returns: [doubled], cache: false, next: two}
    two: {command: csteps.secretive, secrets: [API_TOKEN], returns: [s], next: three}
    three: {command: csteps.fails, next: success}
"""
    where = project(tmp_path, pipeline)
    env = {"API_TOKEN": "tok-123456"}
    assert run(where, "a", env=env) == 1
    assert run(where, "b", env=env) == 1
    # cache: false beside a cached default, a step with secrets under the default, and a
    # failed step: none of them is ever cached
    assert calls(where) == ["make", "secretive", "fails"] * 2
    assert entries(FsspecCatalog(str(where / ".conveyor/catalog"))) == []
    opted = variant(pipeline, lambda d: steps_of(d)["two"].update(cache=True))
    (where / "pipeline.yaml").write_text(opted)
    assert run(where, "c", env=env) == 1 and run(where, "d", env=env) == 1
    assert calls(where) == ["make", "secretive", "fails", "make", "fails"]  # `two` said so itself
    stored = json.dumps(entries(FsspecCatalog(str(where / ".conveyor/catalog"))))
    assert "tok-123456" not in stored


def test_corrupted_entries_miss_once_ttl_and_modes(tmp_path: Path) -> None:
    where = project(tmp_path)
    assert run(where, "first") == 0
    catalog = FsspecCatalog(str(where / ".conveyor/catalog"))
    (use,) = [e for e in entries(catalog) if e["step"] == "use"]
    blob = where / ".conveyor/catalog/_shared" / (BLOBS + use["objects"]["obj"])
    blob.write_bytes(b"not the pickle it was")
    calls(where)
    assert run(where, "second") == 0
    assert calls(where) == ["use"]  # a miss, never a wrong result
    log = FileRunLogStore(str(where / ".conveyor/runs")).load("second")
    assert "missing or corrupted" in Path(log.steps[("use",)].attempts[0].log or "").read_text()
    assert run(where, "third") == 0 and calls(where) == []  # refilled, whole again
    assert run(where, "off", "--no-cache") == 0 and calls(where) == ["make", "use"]
    assert run(where, "refresh", "--refresh-cache") == 0 and calls(where) == ["make", "use"]
    assert cached(where, "refresh") == {}
    assert run(where, "after-refresh") == 0 and set(cached(where, "after-refresh").values()) == {"refresh"}
    expiring = variant(PIPELINE, lambda d: d["dag"].update(cache={"ttl_seconds": 0.001}))
    (where / "pipeline.yaml").write_text(expiring)
    calls(where)
    assert run(where, "ttl-1") == 0 and run(where, "ttl-2") == 0
    assert calls(where) == ["make", "use", "make", "use"]


def test_concurrent_fills_of_one_key_leave_one_valid_entry(tmp_path: Path) -> None:
    where = project(tmp_path)
    (where / "params.yaml").write_text("n: 3\n")
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "conveyor.cli",
                "execute",
                "-q",
                "-f",
                "pipeline.yaml",
                "-c",
                "config.yaml",
                "-p",
                "params.yaml",
                "--run-id",
                f"racer-{i}",
            ],
            cwd=where,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i in range(3)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    catalog = FsspecCatalog(str(where / ".conveyor/catalog"))
    found = entries(catalog)
    assert sorted(e["step"] for e in found) == ["make", "use"]
    assert not list((where / ".conveyor/catalog/_shared/cache").rglob(".tmp-*"))
    calls(where)
    assert run(where, "after") == 0 and calls(where) == []


def test_cache_list_show_and_clear(tmp_path: Path) -> None:
    where = project(tmp_path)
    assert run(where, "first") == 0
    listed = run_cli("cache", "list", "-c", "config.yaml", cwd=where).stdout
    assert "2 entries" in listed and "make" in listed and "use" in listed
    key = next(e for e in entries(FsspecCatalog(str(where / ".conveyor/catalog"))) if e["step"] == "make")[
        "key"
    ]
    shown = run_cli("cache", "show", key[:10], "-c", "config.yaml", cwd=where)
    assert json.loads(shown.stdout)["returns"] == {"doubled": 6}
    assert (
        "removed 0" in run_cli("cache", "clear", "--older-than", "7d", "-c", "config.yaml", cwd=where).stdout
    )
    assert "removed 1" in run_cli("cache", "clear", "--step", "make", "-c", "config.yaml", cwd=where).stdout
    bad = run_cli("cache", "clear", "--older-than", "soon", "-c", "config.yaml", cwd=where)
    assert bad.returncode == 2 and "not a duration" in bad.stderr
    assert "removed 1" in run_cli("cache", "clear", "-c", "config.yaml", cwd=where).stdout
    assert not list((where / ".conveyor/catalog/_shared/cache/blobs").iterdir())  # no blob left behind
