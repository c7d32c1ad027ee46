"""How statuses look on a terminal: one colour and one mark per status, everywhere.

Nothing here imports rich: a quiet ``conveyor execute`` (and every Argo pod's
``execute-single-node``) that prints one plain line never loads it (about a tenth of their
start). The console itself is :class:`conveyor.cli.richconsole.Console`.
"""

from __future__ import annotations

import os
from typing import TextIO

from conveyor.runlog.records import Status


def escape(text: str) -> str:
    """rich's markup escaping of ``text``, rich loaded on the first call (when something is
    about to be printed through it)."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def is_terminal(stream: TextIO) -> bool:
    """Whether rich would treat ``stream`` as a terminal (colour, live display): a tty, or
    forced by ``FORCE_COLOR`` or ``TTY_COMPATIBLE=1`` as rich reads them."""
    if os.environ.get("FORCE_COLOR") or os.environ.get("TTY_COMPATIBLE") == "1":
        return True
    if os.environ.get("TTY_COMPATIBLE") == "0":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False


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
