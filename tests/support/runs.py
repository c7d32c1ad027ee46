"""Helpers for executor tests: write a pipeline, run it, read its run log."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from conveyor.executors.run import RunResult, execute, open_store, resume
from conveyor.runlog.base import RunLog
from conveyor.runlog.records import StepRecord
from conveyor.spec.config import RunConfig
from conveyor.spec.load import config_from_data, load_pipeline


def file_config(root: Path, **executor: Any) -> RunConfig:
    return config_from_data(
        {
            "executor": {"type": "local", "config": executor},
            "run_log_store": {"type": "file", "config": {"path": str(root / "runs")}},
            "catalog": {"type": "file", "config": {"location": str(root / "catalog")}},
        }
    )


def variant(text: str, change: Callable[[dict[str, Any]], None]) -> str:
    """A pipeline's YAML with its data changed by ``change`` (a key set, a step removed):
    variants are made by editing loaded data, never by replacing strings."""
    data = yaml.safe_load(text)
    change(data)
    return yaml.safe_dump(data, sort_keys=False)


def steps_of(data: dict[str, Any]) -> dict[str, Any]:
    """The top-level steps of pipeline data."""
    steps: dict[str, Any] = data["dag"]["steps"]
    return steps


def run_yaml(
    root: Path,
    text: str,
    params: dict[str, Any] | None = None,
    config: RunConfig | None = None,
    run_id: str | None = None,
) -> RunResult:
    path = root / "pipeline.yaml"
    path.write_text(text)
    return execute(load_pipeline(path), config or file_config(root), params or {}, run_id=run_id)


def retry(root: Path, run_id: str, config: RunConfig | None = None) -> RunResult:
    return resume(run_id, config or file_config(root))


def runlog(root: Path, run_id: str, config: RunConfig | None = None) -> RunLog:
    return open_store(config or file_config(root)).load(run_id)


def step(log: RunLog, *path: str) -> StepRecord:
    """The record of the step at ``path`` (KeyError if there is none)."""
    return log.steps[tuple(path)]
