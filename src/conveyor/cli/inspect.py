"""``conveyor runs list|show|logs``: reading run logs back, whatever store holds them."""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from conveyor.cli.errors import EXIT_BAD_INPUT, friendly

COLOURS = {"succeeded": "green", "failed": "red", "running": "yellow", "interrupted": "magenta"}


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


def _status(status: str) -> str:
    return f"[{COLOURS.get(status, 'white')}]{status}[/]"


@friendly
def list_runs(config: Path | None, limit: int) -> int:
    from conveyor.runlog.base import effective_status

    runs = _store(config).list_runs(limit)
    table = Table(title=f"{len(runs)} most recent runs" if runs else "no runs recorded")
    for column in ("run id", "pipeline", "status", "started", "duration", "resumed"):
        table.add_column(column, no_wrap=column in {"run id", "started"})
    for run in runs:
        table.add_row(
            run["run_id"],
            str(run.get("pipeline_name", "-")),
            _status(effective_status(run)),
            _when(run.get("started_at")),
            _took(run.get("started_at"), run.get("ended_at")),
            str(run.get("resumed") or 0),
        )
    Console().print(table)
    return 0


def _tree(steps: dict[str, dict[str, Any]]) -> dict[tuple[str, ...], list[str]]:
    """Children of each path prefix, in first-seen order (map items numerically)."""
    children: dict[tuple[str, ...], dict[str, None]] = {}
    for record in steps.values():
        path = record["path"]
        for depth in range(len(path)):
            children.setdefault(tuple(path[:depth]), {})[path[depth]] = None
    return {parent: list(names) for parent, names in children.items()}


def _row(record: dict[str, Any], label: str) -> tuple[str, ...]:
    attempts = record.get("attempts") or []
    last = attempts[-1] if attempts else {}
    start = last.get("start", record.get("start"))
    end = last.get("end", record.get("end"))
    info = record.get("info") or {}
    detail = last.get("error") or info.get("error") or ""
    if "items" in info:
        detail = f"{info['items']} items, {info.get('failed', 0)} failed" + (f"; {detail}" if detail else "")
        if info.get("failed_items"):
            shown = ", ".join(str(i) for i in info["failed_items"][:10])
            more = "…" if len(info["failed_items"]) > 10 else ""
            detail += f" (failed items: {shown}{more})"
        if info.get("skipped"):
            detail += f"; {info['skipped']} files already processed"
    if "branch" in info:
        detail = f"branch {info['branch']}" + (f"; {detail}" if detail else "")
    return (
        escape(label),
        str(record.get("type") or "-"),
        _status(str(record.get("status"))),
        str(len(attempts)) if attempts else "-",
        _took(start, end),
        escape(str(detail)),
    )


def step_rows(steps: dict[str, dict[str, Any]], items: int) -> list[tuple[str, ...]]:
    """Rows for a step tree; each map lists at most ``items`` items (failed ones first)."""
    from conveyor.runlog.base import step_key

    children = _tree(steps)
    rows: list[tuple[str, ...]] = []

    def item_failed(prefix: tuple[str, ...]) -> bool:
        stack = [prefix]
        while stack:
            here = stack.pop()
            record = steps.get(step_key(here))
            if record and record["status"] == "failed":
                return True
            stack.extend((*here, c) for c in children.get(here, []))
        return False

    def visit(prefix: tuple[str, ...], depth: int) -> None:
        record = steps.get(step_key(prefix))
        if record is not None and record.get("type") == "map":
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
    import json

    log = _store(config).load(run_id)
    run = log.run
    console = Console()
    status = log.status
    console.print(f"[bold]run[/] {run['run_id']}  {_status(status)}")
    console.print(
        f"  pipeline   {run.get('pipeline_name')}  ({run.get('pipeline_file') or 'built in Python'})"
    )
    console.print(f"  hash       {str(run.get('pipeline_hash'))[:16]}")
    took = _took(run.get("started_at"), run.get("ended_at"))
    console.print(f"  started    {_when(run.get('started_at'))}   duration {took}")
    if run.get("resumed"):
        console.print(f"  resumed    {run['resumed']} time(s)")
    if status == "interrupted":
        console.print(
            f"  [magenta]interrupted: the process (pid {run.get('pid')}) is gone.[/] "
            f"Resume with: conveyor retry {run_id}" + (" -c CONFIG" if config else "")
        )
    console.print(f"  parameters {json.dumps(run.get('initial_parameters') or {})[:200]}")
    if run.get("final_parameters"):
        console.print(f"  final      {json.dumps(run['final_parameters'])[:200]}")
    table = Table()
    for column in ("step", "type", "status", "attempts", "duration", "detail"):
        table.add_column(column)
    for row in step_rows(log.steps, items):
        table.add_row(*row)
    console.print(table)
    return 0


@friendly
def show_logs(run_id: str, step: str | None, config: Path | None) -> int:
    store = _store(config)
    log = store.load(run_id)
    wanted = [p.strip() for p in step.split("/")] if step else None
    shown = 0
    for record in log.steps.values():
        path = record["path"]
        if wanted is not None and path[: len(wanted)] != wanted:
            continue
        for attempt in record.get("attempts") or []:
            location = attempt.get("log")
            if not location:
                continue
            shown += 1
            print(f"==> {' / '.join(path)} (attempt {attempt.get('attempt')}, {attempt.get('status')}) <==")
            sys.stdout.write(store.read_log(location))
    if shown == 0:
        print(f"conveyor: no captured output for {step or 'this run'}", file=sys.stderr)
        return (
            EXIT_BAD_INPUT
            if step and not any(r["path"][: len(wanted or [])] == wanted for r in log.steps.values())
            else 0
        )
    return 0
