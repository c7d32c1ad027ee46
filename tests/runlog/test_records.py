"""The run log's records read their JSON by narrowing it: a record written by ``to_json``
reads back the same, and a malformed one reads as empty fields, never a crash."""

from __future__ import annotations

import json

from conveyor.runlog.records import (
    ATTEMPTED_TYPE,
    EndEvent,
    NodeEvent,
    StartEvent,
    Status,
    event_from_json,
    fold,
    step_from_json,
)


def _record() -> list[StartEvent | EndEvent | NodeEvent]:
    return [
        StartEvent(["m", "0", "t"], 1, 1.0),
        EndEvent(
            ["m", "0", "t"],
            1,
            2.5,
            Status.SUCCEEDED,
            started=1.0,
            exit_code=0,
            returns={"rows": [1, 2], "name": "x"},
            metrics={"score": 0.5},
            catalog=[{"name": "out.csv", "size": 3, "sha256": "ab", "location": "run/out.csv"}],
            log="run/t.log",
            info={"cached": {"run": "r0", "key": "k"}},
        ),
    ]


def test_a_step_record_reads_back_what_it_wrote() -> None:
    record = fold(_record())[("m", "0", "t")]
    sent = json.loads(json.dumps(record.to_json()))  # as the server's API sends it
    again = step_from_json(sent)
    assert again == record
    assert again.last is not None and again.last.returns == {"rows": [1, 2], "name": "x"}
    assert again.last.catalog[0]["sha256"] == "ab"


def test_a_malformed_step_record_reads_as_empty_fields() -> None:
    again = step_from_json(
        {
            "path": "not a list",
            "type": 3,
            "status": 7,
            "start": "soon",
            "attempts": [{"attempt": "one", "returns": [1], "error": 5, "catalog": "x"}, "junk"],
            "info": ["x"],
        }
    )
    assert again.path == [] and again.type is None and again.start is None and again.info == {}
    assert again.status is Status.UNKNOWN
    first, second = again.attempts
    assert (first.attempt, first.returns, first.error, first.catalog) == (0, {}, None, [])
    assert second.status is Status.UNKNOWN
    assert step_from_json("not an object").path == []


def test_status_of_anything_that_is_not_one_is_unknown() -> None:
    assert Status.of("succeeded") is Status.SUCCEEDED
    assert Status.of(1) is Status.UNKNOWN and Status.of(None) is Status.UNKNOWN
    assert Status.of("done") is Status.UNKNOWN


def test_a_start_event_without_a_type_reads_as_an_attempt_of_a_task() -> None:
    event = event_from_json({"e": "start", "path": ["a"], "attempt": 2, "t": 1})
    assert isinstance(event, StartEvent) and event.type == ATTEMPTED_TYPE
    assert fold([event])[("a",)].type == ATTEMPTED_TYPE
    assert event_from_json({"e": "end", "path": [1], "t": 1}) is None
