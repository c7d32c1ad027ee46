"""A run's records as plain dicts, handed to a callback as they happen (the SDK's streaming).

The same records the store writer appends (``executors.stream``), in the same order, each
turned into the JSON the run log keeps: a script, a web handler (server-sent events) or a
notebook can follow a run without reading its store. Every dict carries ``e`` (what
happened: ``run``, ``start``, ``end``, ``node``, ``step``) and the ``run_id``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeAlias

from conveyor.executors.stream import Published, Subscriber
from conveyor.jsontypes import JSONObject
from conveyor.runlog.itemattempt import ItemAttempt
from conveyor.runlog.records import RunRecord, StepRecord

#: One event as the feed hands it on: the JSON the run log keeps (read ``e`` for its shape).
EventDict: TypeAlias = JSONObject


def as_dict(record: Published, run_id: str) -> EventDict:
    """One published record as a dict: an event as the run log stores it; the run record
    (at the run's start and end) without its pipeline and config, which do not change."""
    if isinstance(record, RunRecord):
        data: EventDict = {"e": "run", "run_id": record.run_id, "status": str(record.status)}
        data["t"] = record.ended_at if record.ended_at is not None else record.started_at
        if record.error:
            data["error"] = record.error
        if record.final_parameters:
            data["parameters"] = dict(record.final_parameters)
        return data
    if isinstance(record, StepRecord):
        return {"e": "step", "run_id": run_id, **record.to_json()}
    assert not isinstance(record, ItemAttempt)  # the stream gives a Feed its two events
    return {**record.to_json(), "run_id": run_id}


class Feed(Subscriber):
    """Hands each record of one run, as a dict, to ``deliver``; called from the stream's
    dispatcher thread, so a slow consumer does not slow the run (and what it raises
    detaches it, with a word on stderr, without failing the run). The run's id is taken
    from its record, published first: whoever starts the run need not know it beforehand
    (a retry resumes a run named by the environment)."""

    def __init__(self, deliver: Callable[[EventDict], None]) -> None:
        self.deliver = deliver
        self.run_id = ""

    @property
    def name(self) -> str:
        return "the event feed"

    def receive(self, batch: Sequence[Published]) -> None:
        for record in batch:
            if isinstance(record, RunRecord):
                self.run_id = record.run_id
            self.deliver(as_dict(record, self.run_id))
