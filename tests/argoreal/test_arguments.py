"""A run's parameters as the workflow's arguments, on the real workflow-controller: values
changed in the submitted Workflow (as ``argo submit -p name=value`` does) are the ones the
run log records and the steps use; defaults holding ``{{...}}`` and ``$(...)`` reach the run
log unchanged, though the controller substitutes arguments and templates."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from argo.test_arguments import HOSTILE, PIPELINE
from argo.test_e2e import render
from conveyor.executors.argo.arguments import argument_text
from conveyor.runlog.file import FileRunLogStore
from support.argo_real import Namespace

pytestmark = pytest.mark.argoreal


def test_arguments_changed_at_submit_time_drive_the_run(namespace: Namespace, tmp_path: Path) -> None:
    (tmp_path / "pipeline.yaml").write_text(PIPELINE)
    defaults = {**HOSTILE, "title": "{{workflow.name}} {{workflow.uid}}"}  # both resolvable
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(defaults, sort_keys=False))
    doc = render(tmp_path)
    # What `argo submit -p word=changed -p a=40 -p note=...` does to the submitted object;
    # braces given at submit time are written escaped, as docs/how-to/argo.md says.
    changed = {"word": "changed", "a": "40", "note": argument_text("{{workflow.name}} $(HOME)")}
    for argument in doc["spec"]["arguments"]["parameters"]:
        argument["value"] = changed.get(argument["name"], argument["value"])
    done = namespace.submit(doc, {"conveyor-data": tmp_path})
    assert done.phase == "Succeeded", [(p.argv[3:5], p.exit_code, p.stderr[-800:]) for p in done.pods]
    run = FileRunLogStore(str(tmp_path / ".conveyor/runs")).load(done.name).run
    assert run.initial_parameters == {
        **defaults,
        "word": "changed",
        "a": 40,
        "note": "{{workflow.name}} $(HOME)",
    }
    assert run.final_parameters["loud"] == "CHANGED"
    assert run.final_parameters["c"] == 42
    starts = [p for p in done.pods if p.argv[3] == "run-start"]
    assert len(starts) == 1  # the parameters are read once, by run-start
