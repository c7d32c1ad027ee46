"""A 5,000-item map on the real workflow-controller: the files are grouped into partitions
(the renderer's ``withParam`` over partition indices), so the manifest and the Workflow
object stay small and the controller drives 20 branch pods, not 5,000; every item is done
once and the run log records all 5,000."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from argo.test_e2e import render
from conveyor.runlog.file import FileRunLogStore
from support.argo_real import Namespace

pytestmark = pytest.mark.argoreal

ITEMS, SIZE = 5000, 250
BIG_MAP = f"""dag:
  start_at: each
  steps:
    each:
      type: map
      partition: {{source: "data/*.txt", strategy: count, size: {SIZE}}}
      iterate_as: files
      branch: {{start_at: work, steps: {{work: {{command: ctasks.count_files, returns: [n], next: success}}}}}}
      next: success
"""
# Measured: the rendered manifest is 4.6 kB and the finished Workflow object (spec and
# status, 67 nodes) 57 kB; 24 pods took 72 s on 2 loaded cores. Unpartitioned, the same map
# would be 5,000 pods and about 4 MB of node status (some 850 B a node), past the 1 MB at
# which Argo compresses it and etcd's 1.5 MB; partitions are what keep it small.
MANIFEST_BOUND, WORKFLOW_BOUND = 16_000, 200_000


def test_a_5000_item_map_completes_with_a_small_workflow(namespace: Namespace, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    for i in range(ITEMS):
        (tmp_path / "data" / f"f{i:04d}.txt").write_text(str(i))
    (tmp_path / "pipeline.yaml").write_text(BIG_MAP)
    (tmp_path / "params.yaml").write_text("counter: counter.txt\n")
    manifest = render(tmp_path)
    manifest_size = len((tmp_path / "manifest.yaml").read_text())
    assert manifest_size < MANIFEST_BOUND, manifest_size
    started = time.monotonic()
    done = namespace.submit(manifest, {"conveyor-data": tmp_path}, timeout=600)
    took = time.monotonic() - started
    assert done.phase == "Succeeded", [(p.argv[3:5], p.exit_code, p.stderr[-800:]) for p in done.pods]
    workflow_size = len(json.dumps(done.workflow))
    print(
        f"\n{ITEMS} items in {ITEMS // SIZE} partitions: {len(done.pods)} pods, {took:.0f} s; "
        f"manifest {manifest_size} B, Workflow object {workflow_size} B, "
        f"{len(done.nodes())} nodes"
    )
    assert workflow_size < WORKFLOW_BOUND, workflow_size
    assert len(done.pods) == ITEMS // SIZE + 4  # and run-start, fan-out, fan-in, run-end
    log = FileRunLogStore(str(tmp_path / ".conveyor/runs")).load(done.name)
    info = log.steps[("each",)].info
    assert info["partitions"] == ITEMS // SIZE
    assert info["sizes"] == [SIZE] * (ITEMS // SIZE) and sum(info["sizes"]) == ITEMS
    assert log.run.final_parameters["n"] == [SIZE] * (ITEMS // SIZE)
    noted = (tmp_path / "counter.txt").read_text().split()
    assert len(noted) == ITEMS and len(set(noted)) == ITEMS  # each item once
    items = [k for k, r in log.steps.items() if k[0] == "each" and r.type == "task"]
    assert len(items) == ITEMS // SIZE and all(log.steps[k].status == "succeeded" for k in items)
