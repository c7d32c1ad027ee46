"""Live progress for ``conveyor execute``: a line per step, a bar per map, a summary table."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from rich.markup import escape

from conveyor.cli.style import coloured, mark
from conveyor.executors.observer import Observer
from conveyor.runlog.records import Attempt, RunRecord, Status, StepRecord

if TYPE_CHECKING:  # imported when first needed: a chain of tasks shows no bar
    from rich.console import Console
    from rich.progress import Progress, TaskID
    from rich.table import Table


def step_name(path: list[str]) -> str:
    """A step path as people read it."""
    return " / ".join(path)


class ConsoleObserver(Observer):
    """Prints progress, and keeps the records of the steps outside map items for the final
    summary, so that the summary never reads back (and folds) a run log of 100,000 items."""

    def __init__(self, console: Console, quiet: bool = False) -> None:
        self.console = console
        self.quiet = quiet
        self._lock = threading.Lock()
        # Replaced whole, never changed in place: worker threads read it without the lock.
        self._maps: tuple[tuple[str, ...], ...] = ()
        self._bars: dict[tuple[str, ...], TaskID] = {}
        self._progress: Progress | None = None
        self.records: dict[tuple[str, ...], StepRecord] = {}
        # An attempt's marks (cached, mocked, patched), told just before the attempt ends.
        self._marks: dict[tuple[str, ...], dict[str, Any]] = {}

    def _inside_map(self, path: list[str]) -> bool:
        return any(len(path) > len(m) and tuple(path[: len(m)]) == m for m in self._maps)

    def _record(self, path: list[str], kind: str) -> StepRecord:
        key = tuple(path)
        record = self.records.get(key)
        if record is None:
            record = self.records[key] = StepRecord(path, kind)
        return record

    def run_started(self, run: RunRecord) -> None:
        if not self.quiet:
            resumed = f" (resumed, #{run.resumed})" if run.resumed else ""
            self.console.print(f"[bold]run[/] {run.run_id}  pipeline {run.pipeline_name}{resumed}")

    def step_finished(self, path: list[str], status: Status, seconds: float, error: str | None) -> None:
        if self._inside_map(path):  # map items: counted by their bar, not listed; no lock taken
            return
        reused = status is Status.REUSED
        with self._lock:
            record = self._record(path, "task")
            now = time.time()
            record.status = Status.SUCCEEDED if reused else status
            record.attempts.append(
                Attempt(
                    len(record.attempts) + 1,
                    status,
                    start=now - seconds,
                    end=now,
                    error=error or ("reused from the earlier attempt" if reused else None),
                )
            )
            marks = self._marks.pop(tuple(path), {})
            if self.quiet:
                return
            extra = f"  [red]{escape(error)}[/]" if error else ""
            timing = "reused" if reused else f"{seconds:.2f}s"
            said = _say_marks(marks)
            timing += f", {escape(said)}" if said else ""
            self.console.print(f"  {mark(status)} {escape(step_name(path))}  [dim]{timing}[/]{extra}")

    def node(self, path: list[str], kind: str, status: Status, info: dict[str, Any]) -> None:
        key = tuple(path)
        with self._lock:
            if self._inside_map(path):
                return
            record = self._record(path, kind)
            record.type, record.status = kind, status
            if record.start is None:
                record.start = time.time()
            record.info.update({k: v for k, v in info.items() if k != "returns"})
            if kind == "map" and key not in self._maps:
                self._maps = (*self._maps, key)
            if status is not Status.RUNNING:
                record.end = time.time()
            if kind == "task":  # an attempt's marks: said on its own line, by step_finished
                self._marks[key] = info
                return
            if self.quiet:
                return
            if kind == "map" and status is Status.RUNNING and "items" in info:
                self._start_bar(key, step_name(path), int(info["items"]))
                return
            if status is Status.RUNNING:
                return
            self._end_bar(key)
            detail = ""
            if "items" in info:
                detail = f"  {info['items']} items, {info.get('failed', 0)} failed"
            if "branch" in info:
                detail = f"  branch {info['branch']}"
            if "error" in info:
                detail += f"  [red]{escape(str(info['error']))}[/]"
            self.console.print(f"  {mark(status)} {escape(step_name(path))} [dim]({kind})[/]{detail}")

    def _start_bar(self, key: tuple[str, ...], label: str, total: int) -> None:
        if not self.console.is_terminal or key in self._bars:
            return
        if self._progress is None:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("  {task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self._progress.start()
        self._bars[key] = self._progress.add_task(label, total=total)

    def _end_bar(self, key: tuple[str, ...]) -> None:
        task = self._bars.pop(key, None)
        if task is not None and self._progress is not None:
            self._progress.remove_task(task)
            if not self._bars:
                self._progress.stop()
                self._progress = None

    def item_done(self, path: list[str], ok: bool) -> None:
        if self._progress is None:
            return
        with self._lock:
            task = self._bars.get(tuple(path[:-1]))
            if task is not None and self._progress is not None:
                self._progress.advance(task)

    def run_finished(self, run: RunRecord) -> None:
        with self._lock:
            if self._progress is not None:
                self._progress.stop()
                self._progress = None


def _say_marks(marks: dict[str, Any]) -> str:
    """What an attempt's marks mean, in a few words: "cached from run R", "mocked (not run)"."""
    cached = marks.get("cached")
    if isinstance(cached, dict):
        return f"cached from run {cached.get('run')}"
    if marks.get("mocked"):
        return "mocked (not run)"
    if marks.get("patched"):
        return f"patched: {marks['patched']}"
    return ""


#: A summary lists every step up to this many; beyond it, only the steps worth a look.
SUMMARY_ROWS = 20


def _plain(record: StepRecord) -> bool:
    """A task that succeeded at its first attempt: counted in a long summary, not listed."""
    return record.type == "task" and record.status is Status.SUCCEEDED and len(record.attempts) <= 1


def summary_table(run: RunRecord, steps: dict[tuple[str, ...], StepRecord]) -> Table | str:
    """Top-level and branch steps (map items folded into their map) with status and timing.

    A long run lists its composites, failures and retries, and counts the tasks that simply
    succeeded: the live progress has shown each of them already, and ``conveyor runs show``
    lists them all.
    """
    from rich.table import Table

    from conveyor.cli.inspect import step_rows

    took = (run.ended_at or time.time()) - (run.started_at or time.time())
    title = f"run {run.run_id}: {coloured(run.status)} in {took:.2f}s"
    shown = steps
    if len(steps) > SUMMARY_ROWS:
        shown = {key: record for key, record in steps.items() if not _plain(record)}
        title += f"; {len(steps) - len(shown)} tasks succeeded at their first attempt"
    rows = step_rows(shown, items=0)
    if not rows:
        return title
    table = Table(title=title, title_justify="left")
    for column in ("step", "type", "status", "attempts", "duration", "detail"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    return table
