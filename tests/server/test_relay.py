"""The trusted end of a sandboxed run's run log: what it takes, and what stops the run."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from conveyor.runlog.memory import MemoryRunLogStore
from conveyor.runlog.records import RunRecord, Status
from conveyor.server.relay import Relay, RelayLimits, Violation

RUN = "r1"


def _relay(**limits: int) -> tuple[Relay, MemoryRunLogStore]:
    store = MemoryRunLogStore()
    relay = Relay(store, RUN, lambda: 4242, secrets=["s3cr3t-value"], limits=RelayLimits(**limits))
    return relay, store


def _line(request: dict[str, Any]) -> bytes:
    return json.dumps(request).encode() + b"\n"


def _save(**fields: Any) -> bytes:
    run = {"run_id": RUN, "status": "running", **fields}
    return _line({"op": "save", "create": True, "run": run})


def _end(path: list[str], **fields: Any) -> dict[str, Any]:
    return {"e": "end", "path": path, "attempt": 1, "t": 2.0, "status": "succeeded", **fields}


def test_well_formed_writes_reach_the_store_with_the_servers_facts() -> None:
    relay, store = _relay()
    assert relay.handle(_save(pid=1, host="sandbox")) == {"ok": True}
    log = relay.handle(
        _line({"op": "log", "run_id": RUN, "name": "a/attempt-1.log", "text": "hi s3cr3t-value"})
    )
    events = [{"e": "start", "path": ["a"], "attempt": 1, "t": 1.0}, _end(["a"], log=log["location"])]
    assert relay.handle(_line({"op": "append", "run_id": RUN, "events": events})) == {"ok": True}
    loaded = store.load(RUN)
    assert loaded.run.pid == 4242 and loaded.run.host != "sandbox"  # the worker's, not the run's
    assert loaded.steps[("a",)].status is Status.SUCCEEDED
    assert store.read_log(log["location"]) == "hi ***"


@pytest.mark.parametrize("submitted", ["pipelines/nightly.yaml", None])
def test_the_record_names_the_submitted_file_never_the_sandboxs_copy(submitted: str | None) -> None:
    store = MemoryRunLogStore()
    relay = Relay(store, RUN, lambda: 4242, pipeline_name="nightly", pipeline_file=submitted)
    sandbox_copy = "/var/lib/conveyor/work/r1/pipeline.yaml"
    assert relay.handle(_save(pipeline_name="pipeline", pipeline_file=sandbox_copy)) == {"ok": True}
    record = store.load(RUN).run
    assert record.pipeline_name == "nightly" and record.pipeline_file == submitted


def test_a_second_create_is_refused_as_the_store_refuses_it() -> None:
    relay, _ = _relay()
    relay.handle(_save())
    assert relay.handle(_save())["exists"] is True


@pytest.mark.parametrize(
    ("line", "rule"),
    [
        (_line({"op": "save", "run": {"run_id": "other", "status": "running"}}), "another run"),
        (_line({"op": "append", "run_id": "other", "events": []}), "another run"),
        (
            _line({"op": "append", "run_id": RUN, "events": [_end(["a"], log="memory:other/a.log")]}),
            "not one of its own",
        ),
        (_line({"op": "append", "run_id": RUN, "events": [{"e": "bogus"}]}), "not a run log event"),
        (_line({"op": "append", "run_id": RUN, "events": [_end([])]}), "no step path"),
        (_line({"op": "append", "run_id": RUN, "events": [_end(["x" * 2000])]}), "not a list of names"),
        (_line({"op": "append", "run_id": RUN, "events": [_end(["a"] * 300)]}), "too deep"),
        (_save(pipeline_name=["x"]), "'pipeline_name' of type list"),
        (_save(status="pwned"), "status"),
        (_line({"op": "log", "run_id": RUN, "name": "", "text": "x"}), "no valid name"),
        (_line({"op": "exec", "run_id": RUN}), "unknown run log request"),
        (b"not json\n", "not JSON"),
        (_line({"op": "save", "run": {"deep": json.loads("[" * 100 + "]" * 100)}}), "nested deeper"),
    ],
)
def test_each_broken_rule_is_a_violation(line: bytes, rule: str) -> None:
    relay, store = _relay()
    with pytest.raises(Violation, match=rule):
        relay.handle(line)
    assert store.list_runs() == [] or store.load(RUN).steps == {}


def test_an_oversized_write_stops_the_serving_and_names_the_limit() -> None:
    relay, _ = _relay(max_line=1000)
    requests = io.BytesIO(_save() + _line({"op": "log", "run_id": RUN, "name": "x", "text": "y" * 5000}))
    answers = io.BytesIO()
    relay.serve(requests, answers)
    replies = [json.loads(line) for line in answers.getvalue().splitlines()]
    assert replies[0] == {"ok": True} and replies[1]["ok"] is False
    assert "CONVEYOR_SERVER_MAX_EVENT_BYTES" in (relay.violation or "")


def test_a_long_log_keeps_its_tail_and_says_what_was_dropped() -> None:
    relay, store = _relay(max_log=100)
    relay.handle(_save())
    text = "".join(f"line {n}\n" for n in range(100))
    location = relay.handle(_line({"op": "log", "run_id": RUN, "name": "x.log", "text": text}))["location"]
    kept = store.read_log(location)
    assert kept.endswith("line 99\n") and "CONVEYOR_SERVER_MAX_LOG_BYTES" in kept
    assert "line 0\n" not in kept


def test_the_relay_store_inside_round_trips_through_the_relay(tmp_path: Any, monkeypatch: Any) -> None:
    """The sandbox's store and the worker's relay, over real pipes: a resumed run reads its
    log from the snapshot; a save is answered before the call returns, appends once synced."""
    import os
    import threading

    from conveyor.runlog.records import EndEvent
    from conveyor.runlog.relay import FDS_VARIABLE, RelayRunLogStore

    relay, store = _relay()
    req_r, req_w = os.pipe()
    ans_r, ans_w = os.pipe()
    snapshot = tmp_path / "snap.jsonl"
    snapshot.write_text(json.dumps(RunRecord(RUN, status=Status.FAILED).to_json()) + "\n")
    monkeypatch.setenv(FDS_VARIABLE, f"{req_w},{ans_r}")
    inside = RelayRunLogStore(snapshot=str(snapshot))
    thread = threading.Thread(target=relay.serve, args=(os.fdopen(req_r, "rb"), os.fdopen(ans_w, "wb")))
    thread.start()
    assert inside.load(RUN).run.status is Status.FAILED  # from the snapshot
    inside.save_run(RunRecord(RUN, status=Status.RUNNING), create=True)
    inside.append(RUN, [EndEvent(["a"], 1, 2.0, Status.SUCCEEDED)])
    inside.append(RUN, [EndEvent(["b"], 1, 2.0, Status.SUCCEEDED)])
    inside.sync(RUN)
    assert store.load(RUN).steps[("a",)].status is Status.SUCCEEDED  # written when sync returned
    assert store.load(RUN).steps[("b",)].status is Status.SUCCEEDED
    inside.close()
    thread.join(timeout=5)
    assert not thread.is_alive()


def test_a_run_cannot_fill_the_database_with_many_logs() -> None:
    """Each log is bounded, and so is the sum of a run's logs and events: many distinct log
    names stop the run; one log rewritten as it grows counts once."""
    relay, _ = _relay(max_run=10_000)
    relay.handle(_save())
    for _ in range(20):  # a live log rewritten every second, growing: counted at its newest size
        relay.handle(_line({"op": "log", "run_id": RUN, "name": "live.log", "text": "x" * 4000}))
    with pytest.raises(Violation, match="CONVEYOR_SERVER_MAX_RUN_BYTES"):
        for n in range(20):
            relay.handle(_line({"op": "log", "run_id": RUN, "name": f"flood-{n}", "text": "x" * 4000}))


def test_an_errors_megabytes_are_cut_on_the_trusted_side() -> None:
    """The engine in the sandbox cuts a long error, but it is untrusted: the relay cuts what
    it is sent too, so no page of the server copies megabytes an event carried."""
    from conveyor.runlog.records import MAX_ERROR

    relay, store = _relay()
    relay.handle(_save())
    huge = "s3cr3t-value " + "e" * 3_000_000
    events = [_end(["a"], status="failed", error=huge)]
    assert relay.handle(_line({"op": "append", "run_id": RUN, "events": events})) == {"ok": True}
    error = store.load(RUN).steps[("a",)].attempts[-1].error
    assert error is not None and len(error) < MAX_ERROR + 100
    assert error.startswith("*** eee") and "characters cut" in error


def test_appends_that_arrive_together_are_written_in_one_transaction() -> None:
    relay, store = _relay()
    calls: list[int] = []
    append = store.append
    store.append = lambda run_id, events: (calls.append(len(events)), append(run_id, events))[1]  # type: ignore[method-assign]
    appends = b"".join(_line({"op": "append", "run_id": RUN, "events": [_end([f"s{n}"])]}) for n in range(50))
    log = _line({"op": "log", "run_id": RUN, "name": "x.log", "text": "hi"})
    answers = io.BytesIO()
    relay.serve(io.BytesIO(_save() + appends + log + appends.replace(b'"s', b'"t')), answers)
    replies = [json.loads(line) for line in answers.getvalue().splitlines()]
    assert len(replies) == 102 and all(r["ok"] for r in replies), replies[-1]
    assert calls == [50, 50]  # before the log (in order), and the rest
    assert len(store.load(RUN).steps) == 100 and relay.violation is None


def test_a_broken_rule_amid_appends_keeps_those_before_it_and_stops() -> None:
    relay, store = _relay()
    good = b"".join(_line({"op": "append", "run_id": RUN, "events": [_end([f"s{n}"])]}) for n in range(3))
    other = _line({"op": "append", "run_id": "another-run", "events": [_end(["x"])]})
    after = _line({"op": "append", "run_id": RUN, "events": [_end(["late"])]})
    answers = io.BytesIO()
    relay.serve(io.BytesIO(_save() + good + other + after), answers)
    replies = [json.loads(line) for line in answers.getvalue().splitlines()]
    assert [r["ok"] for r in replies] == [True, True, True, True, False]
    assert "another run's log" in (relay.violation or "")
    assert sorted(p[0] for p in store.load(RUN).steps) == ["s0", "s1", "s2"]


def test_a_line_cut_short_by_the_runs_end_is_a_violation() -> None:
    relay, _ = _relay()
    answers = io.BytesIO()
    relay.serve(io.BytesIO(_save() + b'{"op": "append"'), answers)
    assert "does not end its line" in (relay.violation or "")
