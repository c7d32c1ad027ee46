"""How statuses look on a terminal: one colour and one mark per status, everywhere."""

from __future__ import annotations

import os
from typing import Any

import rich.console

from conveyor.runlog.records import Status

#: Columns a table may take when the output is not a terminal (a pipe, a file, CI's log).
PIPE_WIDTH = 240


class Console(rich.console.Console):
    """rich's console, except that written to a pipe or a file it does not cut tables at 80
    columns (rich's default without a terminal): `conveyor runs list | grep` and CI logs
    keep whole run ids and pipeline names. ``COLUMNS`` still decides when set."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "width" not in kwargs and "COLUMNS" not in os.environ and not self.is_terminal:
            self.width = PIPE_WIDTH


COLOURS: dict[Status, str] = {
    Status.SUCCEEDED: "green",
    Status.FAILED: "red",
    Status.RUNNING: "yellow",
    Status.QUEUED: "yellow",
    Status.INTERRUPTED: "magenta",
    Status.CANCELLED: "magenta",
    Status.REUSED: "cyan",
}
MARKS: dict[Status, str] = {
    Status.SUCCEEDED: "✓",
    Status.FAILED: "✗",
    Status.REUSED: "↺",
    Status.RUNNING: "…",
}


def coloured(status: str) -> str:
    """A status as rich markup, in its colour."""
    return f"[{COLOURS.get(Status.of(status), 'white')}]{status}[/]"


def mark(status: str) -> str:
    """A status's one-character mark, as rich markup."""
    known = Status.of(status)
    symbol = MARKS.get(known)
    if symbol is None:
        return str(status)
    if known is Status.RUNNING:
        return symbol
    return f"[{COLOURS[known]}]{symbol}[/]"
