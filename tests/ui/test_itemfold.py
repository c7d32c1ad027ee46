"""ItemState (the UI's compact fold of a map item's step) means what StepRecord.apply
means: on any sequence of events, typed or as their JSON decodes, its status, span, last
error and last attempt equal those the step record gives."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from conveyor.runlog.itemfold import ItemState
from conveyor.runlog.records import (
    EndEvent,
    Event,
    NodeEvent,
    StartEvent,
    Status,
    StepRecord,
    event_from_json,
)

PATH = ["fan", "3", "work"]
times = st.one_of(st.just(0.0), st.floats(min_value=1.0, max_value=1e9, allow_nan=False))
attempts = st.integers(min_value=0, max_value=3)
statuses = st.sampled_from(list(Status))
errors = st.one_of(st.none(), st.text(max_size=5))

starts = st.builds(StartEvent, st.just(PATH), attempts, times)
ends = st.builds(
    EndEvent,
    st.just(PATH),
    attempts,
    times,
    statuses,
    started=st.one_of(st.none(), times),
    error=errors,
)
nodes = st.builds(NodeEvent, st.just(PATH), st.just("parallel"), statuses, times)
events = st.lists(st.one_of(starts, ends, nodes), max_size=8)


def expected(record: StepRecord) -> tuple[object, ...]:
    """What the UI shows of a step record: status, span, last error, last attempt."""
    starts = [a.start for a in record.attempts if a.start] or ([record.start] if record.start else [])
    ends = [a.end for a in record.attempts if a.end] or ([record.end] if record.end else [])
    last = record.last
    return (
        record.status,
        min(starts) if starts else None,
        max(ends) if ends else None,
        last.error if last else None,
        last.attempt if last else 0,
    )


def shown(state: ItemState) -> tuple[object, ...]:
    return (state.status, state.start, state.end, state.error, state.attempt)


@settings(max_examples=400, deadline=None)
@given(events)
def test_typed_events_fold_as_step_record(sequence: list[Event]) -> None:
    record, state = StepRecord(list(PATH)), ItemState()
    for event in sequence:
        record.apply(event)
        state.apply(event)
        assert shown(state) == expected(record)
    assert shown(ItemState.of_record(record)) == expected(record)


@settings(max_examples=400, deadline=None)
@given(events)
def test_json_lines_fold_as_step_record(sequence: list[Event]) -> None:
    """The dict form (a line decoded by the fast parser) reads fields as event_from_json does."""
    record, state = StepRecord(list(PATH)), ItemState()
    for event in sequence:
        data = json.loads(json.dumps(event.to_json()))
        typed = event_from_json(data)
        assert typed is not None
        record.apply(typed)
        state.apply(data)
        assert shown(state) == expected(record)


@given(st.dictionaries(st.sampled_from(["e", "t", "attempt", "status", "started", "error"]),
                       st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=6),
                                 st.floats(allow_nan=False))))  # fmt: skip
def test_malformed_lines_read_as_event_from_json_reads_them(data: dict[str, object]) -> None:
    """Values of the wrong type (a boolean attempt, a text time) are read the same way."""
    data = {**data, "path": PATH}
    record, state = StepRecord(list(PATH)), ItemState()
    typed = event_from_json(data)
    if typed is not None:
        record.apply(typed)
    state.apply(data)
    assert shown(state) == expected(record)


def test_a_retried_item_shows_its_last_attempt() -> None:
    state = ItemState()
    state.apply({"e": "start", "path": PATH, "attempt": 1, "t": 10.0})
    state.apply({"e": "end", "path": PATH, "attempt": 1, "t": 11.0, "status": "failed", "error": "boom"})
    state.apply({"e": "start", "path": PATH, "attempt": 2, "t": 12.0})
    assert (state.status, state.start, state.end, state.error, state.attempt) == (
        Status.RUNNING, 10.0, 11.0, None, 2,
    )  # fmt: skip
    state.close(Status.CANCELLED, 15.0, "run cancelled")
    assert (state.status, state.end, state.error) == (Status.CANCELLED, 15.0, "run cancelled")
