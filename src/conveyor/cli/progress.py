"""Live progress for ``conveyor execute``: a line per step, a bar per map, a summary table."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from conveyor.cli.style import coloured, escape, is_terminal, mark
from conveyor.executors.stream import Published, Subscriber
from conveyor.graph.kinds import info_of, model_named
from conveyor.runlog.itemattempt import ItemAttempt
from conveyor.runlog.records import EndEvent, Event, NodeEvent, RunRecord, Status, StepRecord

if TYPE_CHECKING:  # imported when first needed: a chain of tasks shows no bar
    from rich.console import Console
    from rich.progress import Progress, TaskID
    from rich.table import Table


def step_name(path: list[str]) -> str:
    """A step path as people read it."""
    return " / ".join(path)


class ConsoleProgress(Subscriber):
    """Prints progress from the run's event stream, and folds the records of the steps
    outside map items (with the records' own ``apply``) for the final summary, so that the
    summary never reads back (and folds) a run log of 100,000 items.

    Its records are what the run log's fold gives for those steps: the same events, folded
    the same way. Called from the stream's one dispatcher thread (or a test's).
    """

    def __init__(self, console: Console | None = None, quiet: bool = False) -> None:
        self._console = console
        self.quiet = quiet
        self._maps: set[tuple[str, ...]] = set()
        self._bars: dict[tuple[str, ...], TaskID] = {}
        #: Per map with a bar: the items that have ended an attempt (what the bar counts).
        self._ended: dict[tuple[str, ...], set[str]] = {}
        self._progress: Progress | None = None
        self.records: dict[tuple[str, ...], StepRecord] = {}

    @property
    def name(self) -> str:
        return "the console progress display"

    @property
    def console(self) -> Console:
        """Where progress goes (stderr unless given), made on first use: a quiet run that
        says nothing never loads rich."""
        if self._console is None:
            from conveyor.cli.richconsole import Console

            self._console = Console(stderr=True)
        return self._console

    def _map_of(self, path: list[str]) -> tuple[str, ...] | None:
        """The map whose items hold ``path``, if any (maps inside items are not kept, so
        there is at most one)."""
        for end in range(1, len(path)):
            key = tuple(path[:end])
            if key in self._maps:
                return key
        return None

    takes_item_attempts = True

    def receive(self, batch: Sequence[Published]) -> None:
        maps = self._maps
        for record in batch:
            if isinstance(record, ItemAttempt):  # a map item's attempt (always inside a map)
                if self._progress is not None:
                    inside = self._map_of(record.path)
                    if inside is not None:
                        self._item_ended(inside, record.path[len(inside)])
                continue
            if isinstance(record, RunRecord):
                self._run(record)
                continue
            inside = self._map_of(record.path) if maps and len(record.path) > 1 else None
            if inside is not None:  # map items: counted by their bar, not listed
                if self._progress is not None and isinstance(record, EndEvent):
                    self._item_ended(inside, record.path[len(inside)])
            elif isinstance(record, StepRecord):
                self._reused(record)
            else:
                self._event(record)

    def _run(self, run: RunRecord) -> None:
        if run.status is Status.RUNNING:
            if not self.quiet:
                resumed = f" (resumed, #{run.resumed})" if run.resumed else ""
                self.console.print(
                    f"[bold]run[/] {run.run_id}  pipeline {escape(str(run.pipeline_name))}{resumed}"
                )
        else:
            self.close()

    def _reused(self, record: StepRecord) -> None:
        """A task taken whole from an earlier attempt: its record is the run log's."""
        self.records[tuple(record.path)] = record
        if not self.quiet:
            label = f"{mark(Status.REUSED)} {escape(step_name(record.path))}"
            self.console.print(f"  {label}  [dim]reused[/]")

    def _event(self, event: Event) -> None:
        key = tuple(event.path)
        record = self.records.get(key)
        if record is None:
            record = self.records[key] = StepRecord(list(event.path), getattr(event, "type", None))
        record.apply(event)
        if isinstance(event, EndEvent):
            self._say_end(event)
        elif isinstance(event, NodeEvent):
            if _entry(event.type) == "item":  # its items are counted by a bar, not listed
                self._maps.add(key)
            self._say_node(event)

    def _say_end(self, event: EndEvent) -> None:
        if self.quiet:
            return
        error = event.error
        extra = f"  [red]{escape(error)}[/]" if error else ""
        timing = f"{event.t - (event.started if event.started is not None else event.t):.2f}s"
        said = _say_marks(event.info)
        timing += f", {escape(said)}" if said else ""
        self.console.print(f"  {mark(event.status)} {escape(step_name(event.path))}  [dim]{timing}[/]{extra}")

    def _say_node(self, event: NodeEvent) -> None:
        key, status, kind = tuple(event.path), event.status, event.type
        if self.quiet:
            return
        info = info_of(kind, event.info)
        total = info.state().get("items")
        if status is Status.RUNNING:
            if _entry(kind) == "item" and isinstance(total, int):
                self._start_bar(key, step_name(event.path), total)
            return
        self._end_bar(key)
        said = info.summary()
        detail = f"  [red]{escape(said)}[/]" if info.error else f"  {escape(said)}" if said else ""
        self.console.print(f"  {mark(status)} {escape(step_name(event.path))} [dim]({kind})[/]{detail}")

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
        self._ended.pop(key, None)
        if task is not None and self._progress is not None:
            self._progress.remove_task(task)
            if not self._bars:
                self._progress.stop()
                self._progress = None

    def _item_ended(self, key: tuple[str, ...], index: str) -> None:
        """An item of the map at ``key`` ended an attempt: the bar counts each item once."""
        task = self._bars.get(key)
        ended = self._ended.setdefault(key, set())
        if task is not None and self._progress is not None and index not in ended:
            ended.add(index)
            self._progress.advance(task)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        self._bars.clear()


def _say_marks(marks: Mapping[str, object]) -> str:
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


def _entry(tag: str | None) -> str | None:
    """What the path part after a node of kind ``tag`` names (``item`` for a map's items)."""
    model = model_named(tag)
    return model.entry if model is not None else None


def _plain(record: StepRecord) -> bool:
    """A step that ran a command and succeeded at its first attempt: counted in a long
    summary, not listed."""
    model = model_named(record.type)
    runs = model.runs_command if model is not None else False
    return runs and record.status is Status.SUCCEEDED and len(record.attempts) <= 1


def _summary(
    run: RunRecord, steps: dict[tuple[str, ...], StepRecord]
) -> tuple[str, str, list[tuple[str, ...]]]:
    """The summary's title, as rich markup and as plain text, and its rows."""
    from conveyor.cli.inspect import step_rows

    took = (run.ended_at or time.time()) - (run.started_at or time.time())
    after = f" in {took:.2f}s"
    shown = steps
    if len(steps) > SUMMARY_ROWS:
        shown = {key: record for key, record in steps.items() if not _plain(record)}
        after += f"; {len(steps) - len(shown)} tasks succeeded at their first attempt"
    # A run id is letters, digits and ._- only (checked where it is made): no markup in it.
    before = f"run {run.run_id}: "
    return before + coloured(run.status) + after, before + str(run.status) + after, step_rows(shown, items=0)


def print_summary(run: RunRecord, steps: dict[tuple[str, ...], StepRecord]) -> None:
    """Print a run's summary on stdout: through rich when there is a table or a terminal,
    else its one line as plain text (what rich prints there), without loading rich."""
    import sys

    title, plain, rows = _summary(run, steps)
    if not rows and not is_terminal(sys.stdout):
        print(plain, flush=True)
        return
    from conveyor.cli.richconsole import Console

    Console().print(_table(title, rows) if rows else title)


def summary_table(run: RunRecord, steps: dict[tuple[str, ...], StepRecord]) -> Table | str:
    """Top-level and branch steps (map items folded into their map) with status and timing.

    A long run lists its composites, failures and retries, and counts the tasks that simply
    succeeded: the live progress has shown each of them already, and ``conveyor runs show``
    lists them all.
    """
    title, _, rows = _summary(run, steps)
    return _table(title, rows) if rows else title


def _table(title: str, rows: list[tuple[str, ...]]) -> Table:
    from rich.table import Table  # only for a table: a long run's summary is its title line

    table = Table(title=title, title_justify="left")
    for column in ("step", "type", "status", "attempts", "duration", "detail"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    return table
