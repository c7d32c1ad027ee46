"""One attempt of a map item's step, as one record: its start and its end together.

A map of 100,000 cheap items publishes 100,000 of these, and the run log writes each as
the two lines it always has (``{"e": "start", ...}`` then ``{"e": "end", ...}``): readers,
the UI and ``conveyor runs show`` see no new shape. What is new is only the object in
between: built with a few attribute stores instead of two events, and written by the file
store straight to text (:func:`conveyor.runlog.codec.encode_events`). Subscribers other
than the store writer get the two events it stands for (:meth:`ItemAttempt.events`), made
off the hot path by the stream's dispatcher.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from conveyor.jsontypes import JSONObject
from conveyor.runlog.records import ATTEMPTED_TYPE, EndEvent, Event, StartEvent, Status


class ItemAttempt:
    """An attempt's start and end (``opened``: whether its start is still to be written;
    False when the engine's ticker wrote it while the attempt ran). Its fields are named as
    :class:`~conveyor.runlog.records.EndEvent`'s, ``t`` being when it ended; it has none of
    an end event's others (an exit code, catalog files): a lean item never makes them."""

    __slots__ = (
        "attempt",
        "error",
        "info",
        "log",
        "metrics",
        "opened",
        "path",
        "path_text",
        "returns",
        "started",
        "status",
        "t",
    )

    type = ATTEMPTED_TYPE

    def __init__(
        self,
        path: list[str],
        attempt: int,
        started: float,
        t: float,
        status: Status,
        returns: JSONObject,
        metrics: JSONObject,
        error: str | None = None,
        log: str | None = None,
        opened: bool = True,
        path_text: str | None = None,
        info: JSONObject | None = None,
    ) -> None:
        self.path, self.attempt, self.started, self.t, self.status = path, attempt, started, t, status
        self.returns, self.metrics, self.error, self.log = returns, metrics, error, log
        self.opened = opened
        #: The path as the codec writes it (JSON), when the maker already has it.
        self.path_text = path_text
        #: How it ran when it was not simply run (a cache hit: ``{"cached": {...}}``).
        self.info = info

    def events(self) -> list[Event]:
        """The events this record stands for, as any other attempt publishes them."""
        end = EndEvent(
            self.path,
            self.attempt,
            self.t,
            self.status,
            started=self.started,
            error=self.error,
            returns=self.returns,
            metrics=self.metrics,
            log=self.log,
            info=dict(self.info) if self.info else {},
        )
        return [StartEvent(self.path, self.attempt, self.started), end] if self.opened else [end]


def expanded(batch: Iterable[Any]) -> list[Any]:
    """``batch`` (published records) with each :class:`ItemAttempt` as its events."""
    out: list[Any] = []
    for record in batch:
        if type(record) is ItemAttempt:
            out.extend(record.events())
        else:
            out.append(record)
    return out
