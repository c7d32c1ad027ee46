"""Each node kind, and the failures that must fail, on the real workflow-controller: the
workflow's phase, conveyor's run status, step statuses and final parameters equal those of
the same pipeline run in-process (the pipelines are the emulator tier's, tests/argo)."""

from __future__ import annotations

from pathlib import Path

import pytest

from argo.test_e2e import (
    FAILING,
    LOOP_FAILING,
    MAP_HANDLED,
    NESTED,
    PARTITIONED,
    RETRIED,
    render,
    run_local,
    summary,
)
from conveyor.runlog.file import FileRunLogStore
from support.argo_real import Namespace
from support.runs import variant

pytestmark = pytest.mark.argoreal


def both(tmp_path: Path, text: str, params: str) -> tuple[Path, Path]:
    for name in ("argo", "local"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "pipeline.yaml").write_text(text)
        (tmp_path / name / "params.yaml").write_text(params)
    return tmp_path / "argo", tmp_path / "local"


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
def test_phase_and_run_status_agree_on_the_real_controller(
    text: str, params: str, expect: str, namespace: Namespace, tmp_path: Path
) -> None:
    argo_dir, local_dir = both(tmp_path, text, params)
    done = namespace.submit(render(argo_dir), {"conveyor-data": argo_dir})
    code = run_local(local_dir)
    argo, local = summary(argo_dir, done.name), summary(local_dir, "local-run")
    assert done.phase == ("Succeeded" if expect == "succeeded" else "Failed"), done.phase
    assert argo["status"] == local["status"] == expect
    assert (code == 0) == (expect == "succeeded")
    assert argo["steps"] == local["steps"]
    assert argo["final"] == local["final"]
    if text is RETRIED:
        log = FileRunLogStore(str(argo_dir / ".conveyor/runs")).load(done.name)
        assert [a.status for a in log.steps[("f",)].attempts] == ["failed", "failed", "succeeded"]
        retried = [p for p in done.pods if p.argv[3] == "execute-single-node"]
        assert [p.exit_code != 0 for p in retried] == [True, True, False]


def test_partitioned_map_with_param_on_the_real_controller(namespace: Namespace, tmp_path: Path) -> None:
    argo_dir, local_dir = both(tmp_path, PARTITIONED, "bad: f5.txt\ncounter: counter.txt\n")
    for where in (argo_dir, local_dir):
        (where / "data").mkdir()
        for i in range(10):
            (where / "data" / f"f{i}.txt").write_text(str(i))
    done = namespace.submit(render(argo_dir), {"conveyor-data": argo_dir})
    assert run_local(local_dir) == 0
    argo, local = summary(argo_dir, done.name), summary(local_dir, "local-run")
    assert done.phase == "Succeeded"
    assert argo["final"] == local["final"] and argo["final"]["n"] == [4, 2]
    assert argo["steps"] == local["steps"]
    info = FileRunLogStore(str(argo_dir / ".conveyor/runs")).load(done.name).steps[("each",)].info
    assert info["partitions"] == 3 and info["failed_items"] == [1]


def test_pods_hit_a_cache_filled_by_a_local_run(namespace: Namespace, tmp_path: Path) -> None:
    where = tmp_path / "project"
    where.mkdir()
    (where / "pipeline.yaml").write_text(variant(NESTED, lambda data: data["dag"].update(cache=True)))
    (where / "params.yaml").write_text("xs: [1, 2]\na: 1\nb: 1\n")
    assert run_local(where) == 0
    done = namespace.submit(render(where), {"conveyor-data": where})
    assert done.phase == "Succeeded"
    log = FileRunLogStore(str(where / ".conveyor/runs")).load(done.name)
    tasks = {"/".join(k): r for k, r in log.steps.items() if r.type == "task"}
    assert tasks and all(r.info.get("cached", {}).get("run") == "local-run" for r in tasks.values()), tasks
    assert summary(where, done.name)["final"] == summary(where, "local-run")["final"]
