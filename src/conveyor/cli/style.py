"""How statuses look on a terminal: one colour and one mark per status, everywhere."""

from __future__ import annotations

from conveyor.runlog.records import Status

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
