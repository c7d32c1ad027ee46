"""The JSON edge of the stores (``runlog.codec``): records and events to text and back, torn
lines skipped and counted, unreadable records listed rather than breaking a listing, and
NaN or infinities made sendable."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conveyor.runlog.base import CorruptRunError
from conveyor.runlog.codec import (
    decode_lines,
    decode_run,
    decode_run_of,
    decode_runs,
    encode_event,
    encode_events,
    encode_run,
    finite,
    fold_lines,
)
from conveyor.runlog.records import EndEvent, NodeEvent, RunRecord, StartEvent, Status

EVENTS = [
    StartEvent(["a"], 1, 10.0),
    EndEvent(["a"], 1, 11.0, Status.SUCCEEDED, started=10.0, returns={"x": 1}, metrics={"m": 0.5}),
    NodeEvent(["fan"], "map", Status.RUNNING, 12.0, {"items": 2}),
]


def test_a_run_record_reads_back_the_same() -> None:
    run = RunRecord(run_id="r1", pipeline_name="p", status=Status.FAILED, started_at=1.5, error="boom")
    run.initial_parameters = {"x": [1, 2]}
    run.extra = {"from_a_newer_conveyor": True}
    back = decode_run(encode_run(run, indent=2))
    assert back.to_json() == run.to_json()
    assert back.status is Status.FAILED and back.extra == {"from_a_newer_conveyor": True}


def test_events_are_one_line_each_and_fold_into_steps() -> None:
    text = encode_events(EVENTS).decode()
    assert text.count("\n") == 3 and text.endswith("\n")
    assert text.splitlines()[0] == encode_event(EVENTS[0])
    steps, torn = fold_lines(text.splitlines())
    assert torn == 0
    assert steps[("a",)].status is Status.SUCCEEDED and steps[("a",)].attempts[0].returns == {"x": 1}
    assert steps[("fan",)].status is Status.RUNNING


def test_a_line_torn_by_a_crash_is_skipped_and_counted() -> None:
    lines = encode_events(EVENTS).decode().splitlines()
    torn = [lines[0], lines[1][:20], "", lines[2]]
    steps, skipped = fold_lines(torn)
    assert skipped == 1  # the empty line is not counted as torn
    assert steps[("a",)].status is Status.RUNNING  # its end was the torn line
    counted = [0]
    assert len(decode_lines([b'{"a": 1}', b"{", b"  "], counted)) == 1 and counted == [1]


def test_an_unreadable_record_is_listed_as_unknown() -> None:
    good = encode_run(RunRecord(run_id="ok"))
    listed = decode_runs([("ok", good), ("bad", "{not json"), ("empty", "{}")])
    assert [(r.run_id, r.status) for r in listed] == [
        ("ok", Status.RUNNING),
        ("bad", Status.UNKNOWN),
        ("empty", Status.UNKNOWN),
    ]
    assert listed[2].error == "unreadable run record: not a run record: it has no 'run_id'"


def test_an_unreadable_record_asked_for_by_id_is_a_message() -> None:
    with pytest.raises(CorruptRunError) as caught:
        decode_run_of("r9", "runs/r9/run.json", b"[1, 2]")
    assert "r9" in str(caught.value) and "runs/r9/run.json" in str(caught.value)


def test_finite_names_what_json_lacks() -> None:
    data = {"a": math.nan, "b": [math.inf, -math.inf, 1.0], "c": (2, "x")}
    assert finite(data) == {"a": "NaN", "b": ["Infinity", "-Infinity", 1.0], "c": [2, "x"]}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_finite_always_gives_strict_json_and_keeps_finite_values(value: Any) -> None:
    made = finite(value)
    text = json.dumps(made, allow_nan=False)  # raises if a NaN or an infinity were left
    if "NaN" not in text and "Infinity" not in text:
        assert json.loads(text) == json.loads(json.dumps(value))


@given(
    st.dictionaries(st.text(max_size=8), st.integers() | st.text(max_size=8), max_size=5), st.floats(0, 1e9)
)
def test_any_end_event_round_trips_through_a_line(returns: dict[str, Any], t: float) -> None:
    event = EndEvent(["s", "0", "t"], 2, t, Status.FAILED, returns=returns, error="e")
    steps, torn = fold_lines([encode_event(event)])
    attempt = steps[("s", "0", "t")].attempts[0]
    assert torn == 0 and attempt.returns == returns and attempt.attempt == 2 and attempt.error == "e"


_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)


@given(
    path=st.lists(st.text(max_size=5), min_size=1, max_size=3),
    attempt=st.integers(0, 5),
    t=st.floats(allow_nan=True, allow_infinity=True) | st.integers(),
    started=st.none() | st.floats(0, 2e9),
    returns=st.dictionaries(st.text(max_size=4), _VALUES, max_size=3),
    error=st.none() | st.text(max_size=8),
    log=st.none() | st.text(max_size=5),
    info=st.dictionaries(st.text(max_size=4), _VALUES, max_size=2),
    exit_code=st.none() | st.integers(-3, 3),
)
def test_event_lines_written_field_by_field_equal_the_encoded_json(
    path: list[str],
    attempt: int,
    t: float,
    started: float | None,
    returns: dict[str, Any],
    error: str | None,
    log: str | None,
    info: dict[str, Any],
    exit_code: int | None,
) -> None:
    """``encode_events`` writes a start's and an end's fixed fields directly (a map item's
    hot path): the bytes are those of json encoding each event's JSON, whatever it holds."""
    events = [
        StartEvent(path, attempt, t),
        EndEvent(
            path, attempt, t, Status.SUCCEEDED, started=started, returns=returns, error=error, log=log,
            info=info, exit_code=exit_code, metrics={"m": 1.5}, catalog=[{"name": "f"}],
        ),
        NodeEvent(path, "map", Status.RUNNING, 1.0, {"items": 3}),
        StartEvent(["other"], 1, 2.0, type='odd "type"'),
    ]  # fmt: skip
    expected = "".join(json.dumps(e.to_json(), separators=(",", ":"), default=str) + "\n" for e in events)
    assert encode_events(events) == expected.encode()


def test_run_json_keeps_a_field_per_line_and_reads_back_the_same() -> None:
    run = RunRecord(run_id="r1", status=Status.SUCCEEDED, final_parameters={"values": list(range(1000))})
    text = encode_run(run, indent=1)
    assert text.startswith('{\n "run_id": "r1",\n') and text.endswith("\n}")
    assert '"final_parameters": {"values":[0,1,2,' in text  # values compact, on their field's line
    assert decode_run(text) == decode_run(encode_run(run))
