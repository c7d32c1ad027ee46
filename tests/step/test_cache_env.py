"""A cached step's key covers the environment its scope gives it: a python step in a loop
that reads its index from ``os.environ`` (as the README says it may) gets a key per
iteration, in a loop and in a loop inside a map, with steps on threads and in processes.
Each run is a fresh ``conveyor`` process, as a user's runs are."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conveyor.runlog.file import FileRunLogStore
from support import run_cli

STEPS = """
import os


def note(name):
    with open("calls.txt", "a") as handle:
        handle.write(name + "\\n")


def square():
    i = int(os.environ["i"])
    note(f"square-{i}")
    return i * i, i >= 3


def collect(value: int, squares: list) -> list:
    return squares + [value]


def label(item: str):
    i = int(os.environ["i"])
    note(f"label-{item}{i}")
    return f"{item}{i}", i >= 2


def gather(tag: str, tags: list) -> list:
    return tags + [tag]
"""

LOOP = """dag:
  cache: true
  start_at: rounds
  steps:
    rounds:
      type: loop
      index_as: i
      max_iterations: 6
      break_on: done
      branch:
        start_at: square
        steps:
          square: {command: envsteps.square, returns: [value, done], next: collect}
          collect: {command: envsteps.collect, returns: [squares], next: success}
      next: success
"""

MAP_OF_LOOPS = """dag:
  cache: true
  start_at: each
  steps:
    each:
      type: map
      iterate_on: items
      iterate_as: item
      branch:
        start_at: rounds
        steps:
          rounds:
            type: loop
            index_as: i
            max_iterations: 5
            break_on: stop
            branch:
              start_at: label
              steps:
                label: {command: envsteps.label, returns: [tag, stop], next: gather}
                gather: {command: envsteps.gather, returns: [tags], next: success}
            next: success
      next: success
"""

ISOLATION = {
    "thread": "",
    "process": "executor: {type: local, config: {isolation: process}}\n",
}


def _project(tmp_path: Path, pipeline: str, isolation: str, params: dict[str, object]) -> Path:
    (tmp_path / "envsteps.py").write_text(STEPS)
    (tmp_path / "pipeline.yaml").write_text(pipeline)
    (tmp_path / "config.yaml").write_text(
        "run_log_store: {type: file}\ncatalog: {type: file}\n" + ISOLATION[isolation]
    )
    (tmp_path / "params.yaml").write_text(json.dumps(params))
    return tmp_path


def _run(where: Path, run_id: str) -> tuple[dict[str, object], list[str], int]:
    """The run's final parameters, the calls its steps made, and how many steps hit."""
    done = run_cli(
        "execute", "-q", "-f", "pipeline.yaml", "-c", "config.yaml", "-p", "params.yaml", "--run-id", run_id,
        cwd=where, env={"PYTHONPATH": os.pathsep.join([str(where), os.environ.get("PYTHONPATH", "")])},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    calls = where / "calls.txt"
    made = calls.read_text().split() if calls.exists() else []
    calls.unlink(missing_ok=True)
    log = FileRunLogStore(str(where / ".conveyor/runs")).load(run_id)
    hits = sum(1 for r in log.steps.values() if "cached" in r.info)
    return log.run.final_parameters, made, hits


@pytest.mark.parametrize("isolation", ["thread", "process"])
def test_a_loop_step_reading_its_index_from_the_environment_is_keyed_per_iteration(
    tmp_path: Path, isolation: str
) -> None:
    where = _project(tmp_path, LOOP, isolation, {"squares": []})
    final, made, hits = _run(where, "first")
    assert final["squares"] == [0, 1, 4, 9]  # it reached break_on at i = 3
    assert sorted(made) == ["square-0", "square-1", "square-2", "square-3"] and hits == 0
    final, made, hits = _run(where, "second")
    assert final["squares"] == [0, 1, 4, 9] and made == [] and hits == 8  # every step of 4 iterations


@pytest.mark.parametrize("isolation", ["thread", "process"])
def test_a_loop_inside_a_map_is_keyed_per_item_and_iteration(tmp_path: Path, isolation: str) -> None:
    where = _project(tmp_path, MAP_OF_LOOPS, isolation, {"items": ["a", "b"], "tags": []})
    final, made, hits = _run(where, "first")
    assert final["tags"] == [["a0", "a1", "a2"], ["b0", "b1", "b2"]]
    assert sorted(made) == ["label-a0", "label-a1", "label-a2", "label-b0", "label-b1", "label-b2"]
    final, made, hits = _run(where, "second")
    assert final["tags"] == [["a0", "a1", "a2"], ["b0", "b1", "b2"]] and made == [] and hits == 12
