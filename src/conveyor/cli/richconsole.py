"""The console the CLI prints through: rich's, made to keep whole lines in pipes and logs.

A module of its own so that importing the CLI's helpers (:mod:`conveyor.cli.style`) does not
load rich; a command that prints a table or live progress imports this.
"""

from __future__ import annotations

import os
from typing import Any

import rich.console

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
