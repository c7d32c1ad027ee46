"""The types the server's code reads its rows and bodies through say what is really there:
the queue's rows have exactly the keys (and value types) their TypedDicts declare, the
client's copies of the API's bodies name the server's fields, and a run's config is read
and filled in through ``policy.options``."""

from __future__ import annotations

import json
import types
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

import pytest
from sqlalchemy.exc import IntegrityError

from conveyor.client import bodies
from conveyor.server import policy, queue, schemas
from conveyor.server.auth import create_user
from conveyor.server.db import engine_for, migrate
from conveyor.server.submission import issue_dict
from conveyor.server.supervise import STATE_FILE, live_workers
from conveyor.server.worker import _file_catalog
from conveyor.spec.config import RunConfig
from conveyor.spec.errors import Issue

PIPELINE = "dag:\n  start_at: a\n  steps:\n    a: {type: stub, next: success}\n"


def _fits(value: object, hint: Any) -> bool:
    """Whether ``value`` is of the (simple) type ``hint``: a class or a union of classes."""
    if isinstance(hint, types.UnionType):
        return any(_fits(value, arg) for arg in get_args(hint))
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, get_origin(hint) or hint)


def _check_row(row: dict[str, Any], shape: type) -> None:
    hints = get_type_hints(shape)
    assert set(row) == set(hints), f"{shape.__name__}: {set(row) ^ set(hints)}"
    for key, value in row.items():
        assert _fits(value, hints[key]), f"{shape.__name__}.{key} = {value!r} is not {hints[key]}"


@pytest.fixture
def engine(tmp_path: Path) -> Any:
    db = f"sqlite:///{tmp_path / 's.db'}"
    migrate(db)
    return engine_for(db)


def test_queue_rows_hold_exactly_the_keys_and_types_their_typeddicts_declare(engine: Any) -> None:
    user = create_user(engine, "ann", False)
    run_id = queue.submit(engine, user.id, "p", PIPELINE, "", {"n": 1}, b"code", "typed-run", "p.yaml")
    got = queue.get(engine, run_id)
    assert got is not None
    _check_row(dict(got), queue.QueuedRun)
    assert (got["user"], got["user_id"], got["parameters"]) == ("ann", user.id, '{"n": 1}')
    rows, total = queue.listing(engine, None, None, None, None, 10, 0)
    assert total == 1
    _check_row(dict(rows[0]), queue.RunRow)
    job = queue.claim(engine, "w", 30)
    assert job is not None
    _check_row(dict(job), queue.Job)
    assert (job["code"], job["status"], job["worker"], job["claims"]) == (b"code", "running", "w", 1)


def _keys(shape: Any) -> set[str]:
    """A TypedDict's keys, required or not."""
    return set(shape.__required_keys__ | shape.__optional_keys__)


def test_the_clients_bodies_name_the_fields_of_the_servers_schemas() -> None:
    assert _keys(bodies.RunSummary) == set(schemas.RunSummary.model_fields)
    assert _keys(bodies.RunList) == set(schemas.RunList.model_fields)
    assert _keys(bodies.RunDetail) == set(schemas.RunDetail.model_fields)
    # what the client sends is what the server takes (it refuses any other key)
    assert _keys(bodies.SubmitPayload) == set(schemas.SubmitRun.model_fields)
    # the API's listing rows are what RunSummary documents
    assert _keys(queue.RunRow) == set(schemas.RunSummary.model_fields)


def test_a_located_issue_has_the_keys_the_issue_bodies_declare() -> None:
    issue = issue_dict(Issue("bad", path=("dag", "steps", 0), file="p.yaml", line=3, hint="fix"))
    for shape in (schemas.IssueBody, bodies.Issue):
        assert set(issue) == _keys(shape)
        # an issue of a request that does not fit its schema has only these
        assert shape.__required_keys__ == {"path", "message", "found"}
    assert issue["path"] == ["dag", "steps", 0] and "p.yaml:3" in issue["text"]


def test_run_config_sections_are_read_and_filled_through_options(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("CONVEYOR_SERVER_CATALOG", str(tmp_path / "catalogs"))
    config = RunConfig.model_validate({"executor": {"type": "local"}})
    data = policy.run_config(config, 7, "snap.jsonl", sandboxed=True, catalog_given=False)
    assert policy.options(data, "executor") == {"isolation": "pool"}
    assert data["run_log_store"] == {"type": "relay", "config": {"snapshot": "snap.jsonl"}}
    assert _file_catalog(data) == tmp_path / "catalogs" / "user-7"
    policy.options(data, "executor")["address"] = "tcp://127.0.0.1:1"
    assert data["executor"] == {
        "type": "local",
        "config": {"isolation": "pool", "address": "tcp://127.0.0.1:1"},
    }
    none = policy.run_config(RunConfig.model_validate({"catalog": {"type": "none"}}), 7, "s", False)
    assert _file_catalog(none) is None
    with pytest.raises(TypeError, match="executor is not a mapping"):
        policy.options({"executor": "local"}, "executor")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("not json", {"live": 0, "expected": 1}),
        ("[1, 2]", {"live": 0, "expected": 1}),
        ('{"live": 2, "expected": 2, "t": "yesterday"}', {"live": 0, "expected": 1}),
        ('{"live": 2, "expected": 3, "t": 0}', {"live": 0, "expected": 3}),
    ],
)
def test_a_supervisor_state_not_of_its_shape_reads_as_no_live_workers(
    tmp_path: Path, monkeypatch: Any, text: str, expected: dict[str, int]
) -> None:
    monkeypatch.setenv("CONVEYOR_SERVER_STATE", str(tmp_path))
    (tmp_path / STATE_FILE).write_text(text)
    assert live_workers() == expected


def test_a_fresh_supervisor_state_is_read_as_written(tmp_path: Path, monkeypatch: Any) -> None:
    import time

    monkeypatch.setenv("CONVEYOR_SERVER_STATE", str(tmp_path))
    written = {"live": 2, "expected": 2, "pids": [11, 12], "t": time.time()}
    (tmp_path / STATE_FILE).write_text(json.dumps(written))
    assert live_workers() == written


def test_a_run_whose_steps_declare_secrets_gets_a_process_per_step_not_the_pool() -> None:
    # A thread left in a pool process by one step outlives it and could read a later secret
    # step's environment (hostile review): such runs keep a process per step.
    config = RunConfig.model_validate({"executor": {"type": "local", "config": {"isolation": "pool"}}})
    data = policy.run_config(config, 7, "s", sandboxed=True, declares_secrets=True)
    assert policy.options(data, "executor")["isolation"] == "process"
    plain = policy.run_config(config, 7, "s", sandboxed=True, declares_secrets=False)
    assert policy.options(plain, "executor")["isolation"] == "pool"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 's.db'}"
    else:
        from support.services import fresh_database

        url = fresh_database(request.getfixturevalue("postgres_url"))
    migrate(url)
    engine = engine_for(url)
    yield engine
    engine.dispose()


def test_a_queued_runs_answer_is_the_row_read_back_and_its_wake_up_follows_the_commit(
    any_engine: Any,
) -> None:
    from conveyor.server.wake import CHANNEL

    ann = create_user(any_engine, "ann", False)
    listener = None
    if any_engine.dialect.name == "postgresql":
        import psycopg

        listener = psycopg.connect(any_engine.url.render_as_string(hide_password=False).replace("+psycopg", ""),
                                   autocommit=True)  # fmt: skip
        listener.execute(f"LISTEN {CHANNEL}")
    answered = queue.enqueue(
        any_engine, ann.id, "ann", "p", PIPELINE, "", {"n": 1}, None, None, "p.yaml", tags=["b", "a", "b"]
    )
    assert dict(answered) == dict(queue.get(any_engine, answered["id"]) or {})
    assert answered["tags"] == ["a", "b"]
    _check_row(dict(answered), queue.QueuedRun)
    if listener is not None:
        woken = list(listener.notifies(timeout=5, stop_after=1))
        assert [n.channel for n in woken] == [CHANNEL]
        # a run id taken already: nothing is queued, and no worker is woken
        with pytest.raises(IntegrityError):
            queue.submit(any_engine, ann.id, "p", PIPELINE, "", {}, None, answered["id"], tags=["c"])
        assert list(listener.notifies(timeout=0.5, stop_after=1)) == []
        assert queue.tags_of(any_engine, answered["id"]) == ["a", "b"]
        listener.close()
    untagged = queue.submit(any_engine, ann.id, "p", PIPELINE, "", {}, None)
    assert (queue.get(any_engine, untagged) or {}).get("tags") == []
