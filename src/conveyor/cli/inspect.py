"""``conveyor runs list|show|logs``: reading run logs back, whatever store holds them."""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path
from typing import Any

from conveyor.cli.errors import EXIT_BAD_INPUT, friendly
from conveyor.cli.style import coloured, escape
from conveyor.errors import ConveyorError
from conveyor.graph.kinds import info_of, model_named
from conveyor.runlog.records import RunRecord, Status, StepRecord
from conveyor.spec.errors import Issue, SpecError, did_you_mean


def _store(config: Path | None) -> Any:
    from conveyor.executors.run import open_store
    from conveyor.spec.load import load_config

    return open_store(load_config(config))


def _when(ts: Any) -> str:
    if not isinstance(ts, int | float):
        return "-"
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def _took(start: Any, end: Any) -> str:
    if not isinstance(start, int | float):
        return "-"
    stop = end if isinstance(end, int | float) else time.time()
    return f"{stop - start:.2f}s"


#: How many runs a filtered local listing looks through (as many as there are, in practice).
ALL_RUNS = 1_000_000


def run_tag(run: RunRecord) -> str | None:
    """The tag a run was started with (``execute(tag=...)``), kept in its record's extras."""
    tag = run.extra.get("tag") if isinstance(run.extra, dict) else None
    return str(tag) if tag is not None else None


def _wanted_status(status: str | None) -> Status | None:
    """The status ``--status`` names, or a located error listing the statuses a run can have."""
    if status is None:
        return None
    known = [str(s) for s in Status if s not in (Status.REUSED, Status.UNKNOWN)]
    if status in known:
        return Status(status)
    raise SpecError(
        [
            Issue(
                "unknown run status",
                path=("--status",),
                expected=" | ".join(known),
                found=repr(status),
                hint=did_you_mean(status, known),
            )
        ],
        "invalid option",
    )


def filtered_runs(
    store: Any, limit: int, status: str | None = None, pipeline: str | None = None, tag: str | None = None
) -> list[RunRecord]:
    """The newest ``limit`` runs of a store that have this status (as ``runs list`` shows it:
    a running run whose process is gone is interrupted), pipeline name and tag."""
    from conveyor.runlog.base import effective_status

    wanted = _wanted_status(status)
    if wanted is None and pipeline is None and tag is None:
        return list(store.list_runs(limit))
    return [
        run
        for run in store.list_runs(ALL_RUNS)
        if (wanted is None or effective_status(run) is wanted)
        and (pipeline is None or run.pipeline_name == pipeline)
        and (tag is None or run_tag(run) == tag)
    ][:limit]


@friendly
def list_runs(
    config: Path | None,
    limit: int,
    status: str | None = None,
    pipeline: str | None = None,
    tag: str | None = None,
    user: str | None = None,
) -> int:
    """``conveyor runs list`` over the local run log store, with its filters."""
    from conveyor.cli.richconsole import Console
    from conveyor.runlog.base import effective_status
    from conveyor.runlog.endings import run_end

    if user is not None:
        raise ConveyorError(
            "--user filters a server's runs; the runs of a local run log are not kept by user"
        )
    runs = filtered_runs(_store(config), limit, status, pipeline, tag)
    chosen = ", ".join(f"{k} {v}" for k, v in (("status", status), ("pipeline", pipeline), ("tag", tag)) if v)
    if runs:
        title = f"{len(runs)} most recent runs" + (f" ({chosen})" if chosen else "")
    else:
        title = f"no runs with {chosen}" if chosen else "no runs recorded"
    from rich.table import Table  # imported here: `execute`'s summary line needs none

    table = Table(title=title)
    broken = any(run.status is Status.UNKNOWN for run in runs)
    tagged = any(run_tag(run) for run in runs)
    columns = ["run id", "pipeline", "status", "started", "duration", "resumed"]
    columns += ["tag"] if tagged else []
    columns += ["note"] if broken else []
    for column in columns:
        table.add_column(column, no_wrap=column in {"run id", "started"})
    for run in runs:
        table.add_row(
            run.run_id,
            escape(str(run.pipeline_name or "-")),
            coloured(effective_status(run)),
            _when(run.started_at),
            _took(run.started_at, run_end(run)),
            str(run.resumed),
            *([escape(run_tag(run) or "-")] if tagged else []),
            *([escape(run.error or "") if run.status is Status.UNKNOWN else ""] if broken else []),
        )
    Console().print(table)
    return 0


Steps = dict[tuple[str, ...], StepRecord]


def _tree(steps: Steps) -> dict[tuple[str, ...], list[str]]:
    """Children of each path prefix, in first-seen order (map items numerically)."""
    children: dict[tuple[str, ...], dict[str, None]] = {}
    for path in steps:
        for depth in range(len(path)):
            children.setdefault(tuple(path[:depth]), {})[path[depth]] = None
    return {parent: list(names) for parent, names in children.items()}


def _row(record: StepRecord, label: str) -> tuple[str, ...]:
    attempts = record.attempts
    last = record.last
    start = last.start if last is not None else record.start
    end = last.end if last is not None else record.end
    detail = info_of(record.type, record.info).summary(last.error if last is not None else None)
    return (
        escape(label),
        str(record.type or "-"),
        coloured(record.status),
        str(len(attempts)) if attempts else "-",
        _took(start, end),
        escape(str(detail)),
    )


def step_rows(steps: Steps, items: int) -> list[tuple[str, ...]]:
    """Rows for a step tree; each map lists at most ``items`` items (failed ones first)."""
    children = _tree(steps)
    rows: list[tuple[str, ...]] = []

    def item_failed(prefix: tuple[str, ...]) -> bool:
        stack = [prefix]
        while stack:
            here = stack.pop()
            record = steps.get(here)
            if record is not None and record.status is Status.FAILED:
                return True
            stack.extend((*here, c) for c in children.get(here, []))
        return False

    def visit(prefix: tuple[str, ...], depth: int) -> None:
        record = steps.get(prefix)
        model = model_named(record.type) if record is not None else None
        entry = model.entry if model is not None else None
        if record is not None and entry == "iteration":
            rows.append(_row(record, "  " * depth + prefix[-1]))
            for index in sorted(children.get(prefix, []), key=lambda s: int(s) if s.isdigit() else -1):
                rows.append(("  " * (depth + 1) + escape(f"iteration {index}"), "iteration", "", "", "", ""))
                for name in children.get((*prefix, index), []):
                    visit((*prefix, index, name), depth + 2)
            return
        if record is not None and entry == "item":
            rows.append(_row(record, "  " * depth + prefix[-1]))
            indices = sorted(children.get(prefix, []), key=lambda s: int(s) if s.isdigit() else -1)
            failed = [i for i in indices if item_failed((*prefix, i))]
            failed_set = set(failed)
            shown = (failed + [i for i in indices if i not in failed_set])[:items]
            for index in sorted(shown, key=lambda s: int(s) if s.isdigit() else 0):
                rows.append(("  " * (depth + 1) + escape(f"[{index}]"), "item", "", "", "", ""))
                for name in children.get((*prefix, index), []):
                    visit((*prefix, index, name), depth + 2)
            if len(indices) > len(shown):
                rows.append(
                    ("  " * (depth + 1) + f"… {len(indices) - len(shown)} more items", "", "", "", "", "")
                )
            return
        if record is not None:
            rows.append(_row(record, "  " * depth + prefix[-1]))
        elif prefix:
            rows.append(("  " * depth + prefix[-1], "branch", "", "", "", ""))
        for name in children.get(prefix, []):
            visit((*prefix, name), depth + 1 if prefix else 0)

    visit((), 0)
    return rows


@friendly
def show_run(run_id: str, config: Path | None, items: int) -> int:
    """``conveyor runs show``: a run's header and its step tree."""
    import json

    from conveyor.cli.richconsole import Console
    from conveyor.runlog.endings import last_seen, run_end, settle

    # An ended run's steps still open read as its ending, their durations fixed.
    log = settle(_store(config).load(run_id))
    run = log.run
    console = Console()
    status = log.status
    console.print(f"[bold]run[/] {run.run_id}  {coloured(status)}")
    where = escape(run.pipeline_file or "built in Python")
    console.print(f"  pipeline   {escape(str(run.pipeline_name))}  ({where})")
    console.print(f"  hash       {str(run.pipeline_hash)[:16]}")
    took = _took(run.started_at, run_end(run, last_seen(log.steps.values())))
    console.print(f"  started    {_when(run.started_at)}   duration {took}")
    if run_tag(run):
        console.print(f"  tag        {escape(str(run_tag(run)))}")
    if isinstance(executor := run.config.get("executor"), dict) and executor.get("type") == "mocked":
        console.print("  [yellow]mocked[/]     tasks were not run, except those patched (see detail)")
    if run.resumed:
        console.print(f"  resumed    {run.resumed} time(s)")
    if run.orchestrator:  # an Argo run: what Argo said, and what the run log replays to
        console.print(
            f"  {run.orchestrator:10s} {run.orchestrator_status or 'running'}"
            f" (the run log replays to: {run.replayed_status or 'unfinished'})"
        )
    if status is Status.INTERRUPTED:
        console.print(
            f"  [magenta]interrupted: the process (pid {run.pid}) is gone.[/] "
            f"Resume with: conveyor retry {run_id}" + (" -c CONFIG" if config else "")
        )
    console.print(f"  parameters {json.dumps(run.initial_parameters, default=str)[:200]}")
    if run.final_parameters:
        console.print(f"  final      {json.dumps(run.final_parameters, default=str)[:200]}")
    if log.torn:
        console.print(
            f"  [yellow]note: {log.torn} event line(s) cut short (a crash mid-write) were skipped[/]"
        )
    from rich.table import Table  # imported here: `execute`'s summary line needs none

    table = Table()
    for column in ("step", "type", "status", "attempts", "duration", "detail"):
        table.add_column(column)
    for row in step_rows(log.steps, items):
        table.add_row(*row)
    console.print(table)
    return 0


@friendly
def show_logs(run_id: str, step: str | None, config: Path | None) -> int:
    """``conveyor runs logs``: the captured output of a run's attempts."""
    store = _store(config)
    log = store.load(run_id)
    wanted = [p.strip() for p in step.split("/")] if step else None
    shown = 0
    for record in log.steps.values():
        path = record.path
        if wanted is not None and path[: len(wanted)] != wanted:
            continue
        for attempt in record.attempts:
            location = attempt.log
            if not location:
                continue
            shown += 1
            print(f"==> {' / '.join(path)} (attempt {attempt.attempt}, {attempt.status}) <==")
            sys.stdout.write(store.read_log(location))
    if shown == 0:
        print(f"conveyor: no captured output for {step or 'this run'}", file=sys.stderr)
        return (
            EXIT_BAD_INPUT
            if step and not any(list(p[: len(wanted or [])]) == wanted for p in log.steps)
            else 0
        )
    return 0
