"""What an executor tells whoever is watching (the CLI's live progress, tests)."""

from __future__ import annotations

from typing import Any


class Observer:
    """Receives progress events; every method is optional. Called from worker threads."""

    def run_started(self, run: dict[str, Any]) -> None:
        pass

    def step_started(self, path: list[str], attempt: int) -> None:
        pass

    def step_finished(self, path: list[str], status: str, seconds: float, error: str | None) -> None:
        pass

    def node(self, path: list[str], kind: str, status: str, info: dict[str, Any]) -> None:
        pass

    def item_done(self, path: list[str], ok: bool) -> None:
        """A map item (``path`` ends with its index) finished."""

    def run_finished(self, run: dict[str, Any]) -> None:
        pass
