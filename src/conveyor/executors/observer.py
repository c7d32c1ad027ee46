"""What an executor tells whoever is watching (the CLI's live progress, tests)."""

from __future__ import annotations

from typing import Any

from conveyor.runlog.records import RunRecord, Status


class Observer:
    """Receives progress events; every method is optional. Called from worker threads."""

    def run_started(self, run: RunRecord) -> None:
        """The run record was saved as running (a new run, or a resumed one)."""

    def step_started(self, path: list[str], attempt: int) -> None:
        """An attempt of the task at ``path`` began."""

    def step_finished(self, path: list[str], status: Status, seconds: float, error: str | None) -> None:
        """An attempt ended (or, with REUSED, a task was taken from an earlier attempt)."""

    def node(self, path: list[str], kind: str, status: Status, info: dict[str, Any]) -> None:
        """A composite or stub node changed status."""

    def item_done(self, path: list[str], ok: bool) -> None:
        """A map item (``path`` ends with its index) finished."""

    def run_finished(self, run: RunRecord) -> None:
        """The final run record was saved."""
