"""A rendered manifest's pods, run as local processes in an order the manifest allows,
record the same run as a local run: statuses, final parameters and catalog entries; and
the Argo phase agrees with the conveyor run status in every case."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from conveyor.runlog.file import FileRunLogStore
from executors.test_loop import LOOP
from support import ROOT, TASKS, run_cli
from support.argo_sim import Simulation
from support.runs import steps_of, variant

EXAMPLES = ROOT / "examples"
ARGO_CONFIG = """executor:
  type: argo
  config:
    image: ghcr.io/example/conveyor:0.1
    pvcs: [{claim: conveyor-data, mount_path: /data}]
run_log_store: {type: file, config: {path: .conveyor/runs}}
catalog: {type: file, config: {location: .conveyor/catalog}}
"""
LOCAL_CONFIG = """run_log_store: {type: file, config: {path: .conveyor/runs}}
catalog: {type: file, config: {location: .conveyor/catalog}}
"""


def render(where: Path) -> dict[str, Any]:
    (where / "argo.yaml").write_text(ARGO_CONFIG)
    params = ["-p", "params.yaml"] if (where / "params.yaml").exists() else []
    out = run_cli(
        "render", "argo", "-f", "pipeline.yaml", "-c", "argo.yaml", *params, "-o", "manifest.yaml", cwd=where
    )
    assert out.returncode == 0, out.stderr
    manifest: dict[str, Any] = yaml.safe_load((where / "manifest.yaml").read_text())
    return manifest


def run_argo(where: Path, run_id: str = "argo-run") -> tuple[str, Simulation]:
    sim = Simulation(render(where), where, env={"PYTHONPATH": str(TASKS)})
    return sim.run(run_id), sim


def run_local(where: Path, run_id: str = "local-run") -> int:
    (where / "local.yaml").write_text(LOCAL_CONFIG)
    params = ["-p", "params.yaml"] if (where / "params.yaml").exists() else []
    out = run_cli(
        "execute",
        "-f",
        "pipeline.yaml",
        "-c",
        "local.yaml",
        *params,
        "--run-id",
        run_id,
        cwd=where,
        env={"PYTHONPATH": str(TASKS)},
    )
    return out.returncode


def summary(where: Path, run_id: str) -> dict[str, Any]:
    log = FileRunLogStore(str(where / ".conveyor/runs")).load(run_id)
    steps = {
        "/".join(r.path): r.status
        for r in log.steps.values()
        if r.type in ("task", "map") or r.status == "failed"
    }
    # Unique entries: a map item's put glob may also match files its siblings wrote.
    catalog = sorted(
        {
            (entry["name"], entry["sha256"])
            for r in log.steps.values()
            for attempt in r.attempts[-1:]
            for entry in attempt.catalog
            if not entry["name"].endswith((".pickle", ".ipynb"))
        }
    )
    return {
        "status": log.run.status,
        "final": log.run.final_parameters,
        "steps": steps,
        "catalog": catalog,
    }


def copy(source: Path, tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    shutil.copytree(source, target)
    return target


@pytest.mark.parametrize(
    "example", ["hello_world", "parameters", "parallel", "map_files", "on_failure", "conditional", "loop"]
)
def test_examples_run_the_same_on_argo_as_locally(example: str, tmp_path: Path) -> None:
    argo_dir = copy(EXAMPLES / example, tmp_path, "argo")
    local_dir = copy(EXAMPLES / example, tmp_path, "local")
    phase, sim = run_argo(argo_dir)
    code = run_local(local_dir)
    argo, local = summary(argo_dir, "argo-run"), summary(local_dir, "local-run")
    assert phase == "Succeeded" and code == 0
    assert argo["status"] == local["status"] == "succeeded"
    assert argo["final"] == local["final"]
    assert argo["steps"] == local["steps"]
    assert argo["catalog"] == local["catalog"]
    assert sim.pods[0].template == "run-start" and sim.pods[-1].template == "exit-handler"


FAILING = """dag:
  start_at: first
  steps:
    first: {command: ctasks.add, returns: [c], next: boom}
    boom: {command: ctasks.fail_always, next: never}
    never: {command: ctasks.noop, next: success}
"""

MAP_HANDLED = """dag:
  start_at: fan
  steps:
    fan:
      type: map
      iterate_on: xs
      iterate_as: x
      branch: {start_at: t, steps: {t: {command: ctasks.fail_if, returns: [y], next: success}}}
      next: success
      on_failure: note
    note: {command: ctasks.record, returns: [noted], next: success}
"""

RETRIED = """dag:
  start_at: f
  steps:
    f: {command: ctasks.flaky, returns: [r], retry: {attempts: 3}, next: success}
"""

NESTED = """dag:
  start_at: outer
  steps:
    outer:
      type: map
      iterate_on: xs
      iterate_as: x
      branch:
        start_at: route
        steps:
          route:
            type: conditional
            parameter: x
            branches:
              "1": {start_at: a, steps: {a: {command: ctasks.square, returns: [y], next: success}}}
              "2": {start_at: b, steps: {b: {command: ctasks.add, returns: [y], next: fail}}}
            next: success
            on_failure: fallback
          fallback: {command: ctasks.noop, returns: [y], next: success}
      next: success
"""


def _loop_handled_by_a_failing_note(data: dict[str, Any]) -> None:
    steps = steps_of(data)
    steps["grow"].update(max_iterations=5, next="success", on_failure="note")
    del steps["after"], steps["handled"]
    steps["note"] = {"command": "ctasks.record", "returns": ["noted"], "next": "fail"}


LOOP_FAILING = variant(LOOP, _loop_handled_by_a_failing_note)


@pytest.mark.parametrize(
    ("text", "params", "expect"),
    [
        (FAILING, "a: 1\nb: 2\n", "failed"),
        (
            LOOP_FAILING,
            "total: 0\nstop_at: 3\nfail_at: 1\nmarker: m\ncounter: noted.txt\ntag: loop\n",
            "failed",
        ),
        (LOOP_FAILING, "total: 0\nstop_at: 9\nfail_at: -1\nmarker: m\n", "succeeded"),
        (MAP_HANDLED, "xs: [1, 2, 3]\nbad: 2\ncounter: noted.txt\ntag: handled\n", "succeeded"),
        (RETRIED, "counter: calls.txt\nfail_times: 2\n", "succeeded"),
        (NESTED, "xs: [1, 2]\na: 1\nb: 1\n", "succeeded"),
    ],
    ids=[
        "unhandled-failure",
        "loop-iteration-fails",
        "loop-max-iterations",
        "handled-map-failure",
        "retry-strategy",
        "nested-map-conditional-fail",
    ],
)
def test_phase_and_run_status_agree(text: str, params: str, expect: str, tmp_path: Path) -> None:
    for name in ("argo", "local"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "pipeline.yaml").write_text(text)
        (tmp_path / name / "params.yaml").write_text(params)
    phase, sim = run_argo(tmp_path / "argo")
    code = run_local(tmp_path / "local")
    argo, local = summary(tmp_path / "argo", "argo-run"), summary(tmp_path / "local", "local-run")
    assert phase == ("Succeeded" if expect == "succeeded" else "Failed")
    assert argo["status"] == local["status"] == expect
    assert (code == 0) == (expect == "succeeded")
    assert argo["steps"] == local["steps"]
    assert argo["final"] == local["final"]
    if text is RETRIED:
        attempts = [p.attempt for p in sim.pods if p.args[0] == "execute-single-node"]
        assert attempts == [1, 2, 3]
        log = FileRunLogStore(str(tmp_path / "argo/.conveyor/runs")).load("argo-run")
        assert [a.status for a in log.steps[("f",)].attempts] == ["failed", "failed", "succeeded"]


PARTITIONED = """dag:
  start_at: each
  steps:
    each:
      type: map
      partition: {source: "data/*.txt", strategy: count, size: 4}
      iterate_as: files
      on_item_failure: continue
      branch: {start_at: work, steps: {work: {command: ctasks.fail_on, returns: [n], next: success}}}
      next: success
"""


def test_partitioned_map_on_argo_matches_local(tmp_path: Path) -> None:
    for name in ("argo", "local"):
        where = tmp_path / name
        (where / "data").mkdir(parents=True)
        for i in range(10):
            (where / "data" / f"f{i}.txt").write_text(str(i))
        (where / "pipeline.yaml").write_text(PARTITIONED)
        (where / "params.yaml").write_text("bad: f5.txt\ncounter: counter.txt\n")
    manifest = render(tmp_path / "argo")
    tasks = {t["name"]: t for t in manifest["spec"]["templates"][0]["dag"]["tasks"]}
    assert tasks["each-items"]["withParam"] == "{{tasks.each-fan-out.outputs.parameters.indices}}"
    phase = Simulation(manifest, tmp_path / "argo", env={"PYTHONPATH": str(TASKS)}).run("argo-run")
    code = run_local(tmp_path / "local")
    argo, local = summary(tmp_path / "argo", "argo-run"), summary(tmp_path / "local", "local-run")
    assert phase == "Succeeded" and code == 0
    assert argo["final"] == local["final"] and argo["final"]["n"] == [4, 2]
    assert argo["steps"] == local["steps"]
    log = FileRunLogStore(str(tmp_path / "argo/.conveyor/runs")).load("argo-run")
    info = log.steps[("each",)].info
    assert info["partitions"] == 3 and info["failed_items"] == [1]


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_pods_share_a_sqlite_or_postgres_run_log(
    store: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """execute-single-node works in fresh processes against the sqlite and postgres stores too."""
    where = copy(EXAMPLES / "parallel", tmp_path, "argo")
    if store == "sqlite":
        backend = f"{{type: sqlite, config: {{path: {where / 'runs.db'}}}}}"
    else:
        import uuid

        import sqlalchemy as sa

        base = request.getfixturevalue("postgres_url")
        name = "e2e_" + uuid.uuid4().hex[:10]
        engine = sa.create_engine(base, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
        engine.dispose()
        backend = f"{{type: postgres, config: {{url: '{base.rsplit('/', 1)[0]}/{name}'}}}}"
    config = variant(ARGO_CONFIG, lambda d: d.update(run_log_store=yaml.safe_load(backend)))
    (where / "argo.yaml").write_text(config)
    out = run_cli(
        "render",
        "argo",
        "-f",
        "pipeline.yaml",
        "-c",
        "argo.yaml",
        "-p",
        "params.yaml",
        "-o",
        "m.yaml",
        cwd=where,
    )
    assert out.returncode == 0, out.stderr
    sim = Simulation(yaml.safe_load((where / "m.yaml").read_text()), where, env={"PYTHONPATH": str(TASKS)})
    assert sim.run("argo-run") == "Succeeded"
    from conveyor.executors.run import open_store
    from conveyor.spec.load import load_config

    log = open_store(load_config(where / "argo.yaml")).load("argo-run")
    assert log.run.status == "succeeded" and log.run.final_parameters["total"] == 63
    assert {"/".join(r.path) for r in log.steps.values() if r.type == "task"} == {
        "both/double/work",
        "both/square/work",
        "combine",
    }


def test_pods_hit_a_cache_filled_by_a_local_run(tmp_path: Path) -> None:
    """`execute-single-node` looks the step's key up before running it."""
    where = tmp_path / "project"
    where.mkdir()
    text = variant(NESTED, lambda data: data["dag"].update(cache=True))
    (where / "pipeline.yaml").write_text(text)
    (where / "params.yaml").write_text("xs: [1, 2]\na: 1\nb: 1\n")
    assert run_local(where) == 0
    phase, sim = run_argo(where)
    assert phase == "Succeeded"
    assert any(p.args[0] == "execute-single-node" for p in sim.pods)  # pods ran, and looked up
    log = FileRunLogStore(str(where / ".conveyor/runs")).load("argo-run")
    tasks = {"/".join(k): r for k, r in log.steps.items() if r.type == "task"}
    assert tasks and all(r.info.get("cached", {}).get("run") == "local-run" for r in tasks.values()), tasks
    assert summary(where, "argo-run")["final"] == summary(where, "local-run")["final"]
