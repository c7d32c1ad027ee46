"""The UI's progress says what happened: failures counted (steps and map items), and only
what a run has to do counted as to do (a conditional's branch taken, a succeeded run's path)."""

from __future__ import annotations

from pathlib import Path

from conveyor.runlog.file import FileRunLogStore
from conveyor.ui.views import RunView
from support.runs import run_yaml

CONDITIONAL = """dag:
  start_at: first
  steps:
    first: {command: ctasks.noop, next: choose}
    choose:
      type: conditional
      parameter: mode
      branches:
        fast: {start_at: quick, steps: {quick: {command: ctasks.noop, next: success}}}
        slow: {start_at: long, steps: {long: {command: ctasks.noop, next: success}}}
      next: last
      on_failure: cleanup
    last: {command: ctasks.noop, next: success}
    cleanup: {command: ctasks.noop, next: fail}
"""
FAILING = """dag:
  start_at: first
  steps:
    first: {command: ctasks.noop, next: boom}
    boom: {command: ctasks.fail_always, next: last}
    last: {command: ctasks.noop, next: success}
"""
MAPPED = """dag:
  start_at: fan
  steps:
    fan:
      type: map
      iterate_on: xs
      iterate_as: x
      on_item_failure: continue
      branch: {start_at: check, steps: {check: {command: ctasks.fail_if, next: success}}}
      next: success
"""


def _progress(root: Path, run_id: str) -> dict[str, int]:
    view = RunView(FileRunLogStore(str(root / "runs")), run_id)
    return {k: v for k, v in view.progress().items() if v}


def test_a_succeeded_conditional_counts_only_the_branch_taken(workdir: Path) -> None:
    assert run_yaml(workdir, CONDITIONAL, {"mode": "fast"}, run_id="c").ok
    # first, choose, last: top-level steps (choose is one, its branch inside it); the
    # on_failure path was not to do
    assert _progress(workdir, "c") == {"steps": 3, "steps_done": 3, "steps_succeeded": 3}


def test_a_failed_run_counts_its_failure(workdir: Path) -> None:
    assert not run_yaml(workdir, FAILING, run_id="f").ok
    assert _progress(workdir, "f") == {"steps": 3, "steps_done": 2, "steps_succeeded": 1, "steps_failed": 1}


def test_a_map_with_failed_items_counts_them(workdir: Path) -> None:
    run_yaml(workdir, MAPPED, {"xs": [1, 2, 3, 4], "bad": 3}, run_id="m")
    progress = _progress(workdir, "m")
    assert progress["items"] == 4 and progress["items_done"] == 4
    assert progress["items_succeeded"] == 3 and progress["items_failed"] == 1
