"""``conveyor runs status|logs|stop|retry``: the run log, plus the Argo Server for Argo runs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from conveyor.cli.errors import friendly
from conveyor.cli.richconsole import Console
from conveyor.errors import ConveyorError

if TYPE_CHECKING:
    from conveyor.runlog.records import RunRecord


def _argo(config: Path | None, server: str | None, token: str | None, namespace: str | None) -> Any:
    """The Argo Server client when the config uses the argo executor, else None."""
    from conveyor.spec.load import load_config

    if config is None or load_config(config).executor.type != "argo":
        return None
    from conveyor.cli.argo import _argo_config, _server

    return _server(_argo_config(config), server, token, namespace, False)


def _run_record(config: Path | None, run_id: str) -> RunRecord | None:
    from conveyor.executors.run import open_store
    from conveyor.runlog.base import RunNotFoundError
    from conveyor.spec.load import load_config

    try:
        log = open_store(load_config(config)).load(run_id)
    except (RunNotFoundError, OSError):
        return None
    log.run.status = log.status
    return log.run


@friendly
def status(
    run_id: str, config: Path | None, server: str | None, token: str | None, namespace: str | None
) -> int:
    """``conveyor runs status``: the Argo workflow's for Argo runs, else the run log's."""
    from conveyor.cli.argo import status_table, workflow_name

    argo = _argo(config, server, token, namespace)
    if argo is None:
        from conveyor.cli.inspect import show_run

        return int(show_run(run_id, config, 10))
    workflow = argo.get(workflow_name(run_id))
    Console().print(status_table(workflow, _run_record(config, run_id)))
    return 0


@friendly
def logs(run_id: str, step: str | None, config: Path | None, server: str | None, token: str | None) -> int:
    """``conveyor runs logs``: pod logs for Argo runs, else the captured output."""
    from conveyor.cli.argo import workflow_name

    argo = _argo(config, server, token, None)
    if argo is None:
        from conveyor.cli.inspect import show_logs

        return int(show_logs(run_id, step, config))
    lines = argo.logs(workflow_name(run_id))
    for line in lines:
        print(f"{line['podName']}: {line['content']}")
    return 0


@friendly
def act(run_id: str, verb: str, config: Path | None, server: str | None, token: str | None) -> int:
    """``conveyor runs stop|retry`` for Argo runs; a local run is retried here."""
    from conveyor.cli.argo import workflow_name

    argo = _argo(config, server, token, None)
    if argo is None:
        if verb == "retry":
            from conveyor.cli.commands import retry

            return int(retry(run_id, config, None, False))
        raise ConveyorError(f"'{verb}' needs a running service: this config runs pipelines in-process")
    answer = argo.action(workflow_name(run_id), verb)
    print(f"{verb}: workflow {workflow_name(run_id)} is {answer.get('status', {}).get('phase', 'updated')}")
    return 0
