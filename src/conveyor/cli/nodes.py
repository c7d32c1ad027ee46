"""The commands a pod runs: run-start, execute-single-node, kind-verb, run-end."""

from __future__ import annotations

from pathlib import Path

from conveyor.cli.errors import EXIT_FAILED, friendly


def _files(file: Path, config: Path | None) -> tuple[str, str | None]:
    return str(file), str(config) if config else None


@friendly
def run_start(run_id: str | None, file: Path, config: Path | None, params: Path | None) -> int:
    """Pod command: record the run."""
    from conveyor.executors.pods import run_start as start

    print(start(run_id, *_files(file, config), str(params) if params else None))
    return 0


@friendly
def execute_single_node(run_id: str, step: str, file: Path, config: Path | None) -> int:
    """Pod command: do what one node does in a pod."""
    from conveyor.executors.pods import execute_single_node as run

    return 0 if run(run_id, step, *_files(file, config)) else EXIT_FAILED


@friendly
def kind_verb(verb: str, run_id: str, step: str, file: Path, config: Path | None) -> int:
    """Pod command: a kind's orchestrator-side verb (a map's fan-out, a loop's loop-check)."""
    from conveyor.executors.pods import kind_verb as do

    return 0 if do(verb, run_id, step, *_files(file, config)) else EXIT_FAILED


@friendly
def run_end(run_id: str, status: str, file: Path, config: Path | None) -> int:
    """Pod command (exit handler): record the final status."""
    from conveyor.executors.pods import run_end as end

    print(f"run {run_id} {end(run_id, status, *_files(file, config))}")
    return 0
