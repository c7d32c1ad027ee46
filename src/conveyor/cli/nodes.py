"""The commands a pod runs: run-start, execute-single-node, fan-out, fan-in, run-end."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conveyor.cli.errors import EXIT_BAD_INPUT, EXIT_FAILED, friendly


def _guard(work: Callable[[], Any]) -> Any:
    from conveyor.executors.single import SingleNodeError
    from conveyor.graph.replay import NotReached

    try:
        return work()
    except (SingleNodeError, NotReached) as exc:
        print(f"conveyor: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT) from None


@friendly
def run_start(run_id: str | None, file: Path, config: Path | None, params: Path | None) -> int:
    from conveyor.executors.single import run_start as start

    started = _guard(
        lambda: start(run_id, str(file), str(config) if config else None, str(params) if params else None)
    )
    print(started)
    return 0


@friendly
def execute_single_node(run_id: str, step: str, file: Path, config: Path | None) -> int:
    from conveyor.executors.single import execute_single_node as run

    ok = _guard(lambda: run(run_id, step, str(file), str(config) if config else None))
    return 0 if ok else EXIT_FAILED


@friendly
def fan_out(run_id: str, step: str, file: Path, config: Path | None) -> int:
    from conveyor.executors.single import fan_out as out

    count = _guard(lambda: out(run_id, step, str(file), str(config) if config else None))
    print(count if count is not None else "map failed")
    return 0 if count is not None else EXIT_FAILED


@friendly
def fan_in(run_id: str, step: str, file: Path, config: Path | None) -> int:
    from conveyor.executors.single import fan_in as reduce

    ok = _guard(lambda: reduce(run_id, step, str(file), str(config) if config else None))
    return 0 if ok else EXIT_FAILED


@friendly
def run_end(run_id: str, status: str, file: Path, config: Path | None) -> int:
    from conveyor.executors.single import run_end as end

    recorded = _guard(lambda: end(run_id, status, str(file), str(config) if config else None))
    print(f"run {run_id} {recorded}")
    return 0
