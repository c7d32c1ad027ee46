"""``conveyor runs status|logs|stop|retry``: the run log, plus the Argo Server for Argo runs."""

from __future__ import annotations

import time
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
    """``conveyor runs logs``: the captured output the run log holds (an Argo run's pods
    write it there too); for an Argo run the run log cannot be read from here, its pods'
    logs from the Argo Server."""
    from conveyor.cli.argo import workflow_name
    from conveyor.cli.inspect import show_logs

    argo = _argo(config, server, token, None)
    if argo is None or _run_record(config, run_id) is not None:
        return int(show_logs(run_id, step, config))
    lines = argo.logs(workflow_name(run_id))
    for line in lines:
        print(f"{line['podName']}: {line['content']}")
    return 0


def _mark_cancel(config: Path | None, run_id: str, requested: float | None) -> float | None:
    """Note in the run log that a stop was asked for (so the run's end records it as
    cancelled), or clear the note before a retry; nothing when the run log lacks the run.
    Returns the note it replaced."""
    from conveyor.executors.run import open_store
    from conveyor.runlog.base import RunNotFoundError
    from conveyor.spec.load import load_config

    store = open_store(load_config(config))
    try:
        run = store.load(run_id).run
    except (RunNotFoundError, OSError):
        return None
    before = run.cancel_requested
    if before != requested:
        run.cancel_requested = requested
        store.save_run(run)
    return before


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
    # Stop and terminate end the workflow "Failed": the run log is told first that it was on
    # request (its exit handler may run at once), and untold if the server refuses.
    before = _mark_cancel(config, run_id, time.time() if verb in ("stop", "terminate") else None)
    try:
        answer = argo.action(workflow_name(run_id), verb)
    except ConveyorError:
        _mark_cancel(config, run_id, before)
        raise
    # The server answers before the controller acts: a stopped workflow still shows its
    # phase with spec.shutdown set; a retried one has no phase until the controller runs it.
    phase = answer.get("status", {}).get("phase") or "reset, waiting for the controller"
    shutdown = answer.get("spec", {}).get("shutdown")
    note = (
        f" (shutting down: {shutdown})" if shutdown and phase not in ("Succeeded", "Failed", "Error") else ""
    )
    print(f"{verb}: workflow {workflow_name(run_id)} is {phase}{note}")
    return 0
