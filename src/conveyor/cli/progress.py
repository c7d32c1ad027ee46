"""Live progress for ``conveyor execute``: a line per step, a bar per map, a summary table."""

from __future__ import annotations

import threading
import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from conveyor.executors.observer import Observer

MARKS = {"succeeded": "[green]✓[/]", "failed": "[red]✗[/]", "reused": "[cyan]↺[/]", "running": "…"}


def step_name(path: list[str]) -> str:
    return " / ".join(path)


class ConsoleObserver(Observer):
    def __init__(self, console: Console, quiet: bool = False) -> None:
        self.console = console
        self.quiet = quiet
        self._lock = threading.Lock()
        self._maps: dict[tuple[str, ...], TaskID] = {}
        self._progress: Progress | None = None
        self._started = time.time()

    def _inside_map(self, path: list[str]) -> bool:
        return any(tuple(path[: len(m)]) == m and len(path) > len(m) for m in self._maps)

    def run_started(self, run: dict[str, Any]) -> None:
        if not self.quiet:
            resumed = f" (resumed, #{run.get('resumed')})" if run.get("resumed") else ""
            self.console.print(f"[bold]run[/] {run['run_id']}  pipeline {run['pipeline_name']}{resumed}")

    def step_finished(self, path: list[str], status: str, seconds: float, error: str | None) -> None:
        if self.quiet:
            return
        with self._lock:
            if self._inside_map(path):
                return
            extra = f"  [red]{error}[/]" if error else ""
            timing = "reused" if status == "reused" else f"{seconds:.2f}s"
            self.console.print(f"  {MARKS.get(status, status)} {step_name(path)}  [dim]{timing}[/]{extra}")

    def node(self, path: list[str], kind: str, status: str, info: dict[str, Any]) -> None:
        if self.quiet:
            return
        key = tuple(path)
        with self._lock:
            if kind == "map" and status == "running" and "items" in info and not self._inside_map(path):
                if self._progress is None and self.console.is_terminal:
                    self._progress = Progress(
                        TextColumn("  {task.description}"),
                        BarColumn(),
                        MofNCompleteColumn(),
                        TimeElapsedColumn(),
                        console=self.console,
                        transient=True,
                    )
                    self._progress.start()
                task = (
                    self._progress.add_task(step_name(path), total=info["items"])
                    if self._progress
                    else TaskID(0)
                )
                self._maps[key] = task
                return
            if status == "running" or self._inside_map(path):
                return
            if key in self._maps:
                task = self._maps.pop(key)
                if self._progress is not None:
                    self._progress.remove_task(task)
                    if not self._maps:
                        self._progress.stop()
                        self._progress = None
            detail = ""
            if "items" in info:
                detail = f"  {info['items']} items, {info.get('failed', 0)} failed"
            if "branch" in info:
                detail = f"  branch {info['branch']}"
            if "error" in info:
                detail += f"  [red]{info['error']}[/]"
            self.console.print(f"  {MARKS.get(status, status)} {step_name(path)} [dim]({kind})[/]{detail}")

    def item_done(self, path: list[str], ok: bool) -> None:
        if self._progress is None:
            return
        with self._lock:
            task = self._maps.get(tuple(path[:-1]))
            if task is not None and self._progress is not None:
                self._progress.advance(task)

    def run_finished(self, run: dict[str, Any]) -> None:
        with self._lock:
            if self._progress is not None:
                self._progress.stop()
                self._progress = None


def summary_table(run: dict[str, Any], steps: dict[str, dict[str, Any]]) -> Table:
    """Top-level and branch steps (map items folded into their map) with status and timing."""
    from conveyor.cli.inspect import step_rows

    status = run.get("status", "?")
    colour = {"succeeded": "green", "failed": "red"}.get(status, "yellow")
    took = (run.get("ended_at") or time.time()) - (run.get("started_at") or time.time())
    table = Table(title=f"run {run['run_id']}: [{colour}]{status}[/] in {took:.2f}s", title_justify="left")
    for column in ("step", "type", "status", "attempts", "duration", "detail"):
        table.add_column(column)
    for row in step_rows(steps, items=0):
        table.add_row(*row)
    return table
