"""``durability`` on the SQL stores: what each level asks of SQLite and of a real PostgreSQL,
that every level records every item, that a killed process (``kill -9``) at the default
loses nothing reported, and that a wrong value is a located config error. What a power cut
leaves of a SQLite store is in ``test_powercut.py``."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor.executors.run import execute
from conveyor.runlog.base import RunLogStore
from conveyor.runlog.records import EndEvent, RunRecord, StartEvent, Status
from conveyor.runlog.sql import SQLRunLogStore
from conveyor.runlog.sqlite import SQLiteRunLogStore
from conveyor.spec.load import load_pipeline
from support import TASKS, run_cli
from support.runs import file_config

LEVELS = ["strict", "batched", "relaxed"]

MAP = """dag:
  start_at: list
  steps:
    list: {command: ctasks.numbers, returns: [xs], next: fan}
    fan:
      type: map
      iterate_on: xs
      iterate_as: x
      branch:
        start_at: sq
        steps:
          sq: {command: ctasks.square, returns: [y], next: success}
      next: success
"""

CUT = """dag:
  start_at: fan
  steps:
    fan:
      type: map
      iterate_on: xs
      iterate_as: x
      max_parallelism: 1
      branch:
        start_at: item
        steps:
          item: {command: ctasks.cut_at, returns: [y], next: success}
      next: success
"""


def _unique(name: str) -> str:
    """A run id no other test of the session's PostgreSQL uses."""
    return f"{name}-{os.getpid()}-{time.monotonic_ns()}"


class Commits:
    """What PostgreSQL says of each transaction of ``engine`` as it commits: its
    ``synchronous_commit``, and whether it has a transaction id (a commit without one,
    having written nothing, waits for no flush). A statement run in autocommit (a fenced
    append: one statement, its own transaction) commits as it ends: seen then, with the
    session's ``synchronous_commit`` (its commit's level) and whether it wrote rows."""

    def __init__(self, engine: Any) -> None:
        from sqlalchemy import event

        self.engine, self.seen = engine, []  # type: list[tuple[str, bool]]
        event.listen(engine, "commit", self._commit)
        event.listen(engine, "after_cursor_execute", self._statement)

    def _commit(self, conn: Any) -> None:
        row = conn.exec_driver_sql(
            "SELECT current_setting('synchronous_commit'), txid_current_if_assigned() IS NOT NULL"
        ).one()
        self.seen.append((str(row[0]), bool(row[1])))

    def _statement(self, conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if conn.connection.dbapi_connection.autocommit and "INSERT" in statement:
            wrote = cursor.rowcount > 0
            setting = conn.connection.dbapi_connection.execute("SELECT current_setting('synchronous_commit')")
            self.seen.append((str(setting.fetchone()[0]), wrote))

    def close(self) -> None:
        from sqlalchemy import event

        event.remove(self.engine, "commit", self._commit)
        event.remove(self.engine, "after_cursor_execute", self._statement)


def _attempt(x: int) -> list[Any]:
    path = ["fan", str(x), "sq"]
    return [StartEvent(path, 1, 1.0), EndEvent(path, 1, 2.0, Status.SUCCEEDED)]


@pytest.mark.postgres
@pytest.mark.parametrize("durability", LEVELS)
def test_postgres_commits_appends_as_the_durability_says(postgres_url: str, durability: str) -> None:
    store = SQLRunLogStore(postgres_url, durability=durability)
    run_id = _unique("pg-commit")
    commits = Commits(store.engine)
    try:
        store.save_run(RunRecord(run_id=run_id, status=Status.RUNNING), create=True)
        assert commits.seen == [("on", True)], "a run is created with a synchronous commit"
        commits.seen.clear()
        store.append(run_id, _attempt(0))
        wanted = "on" if durability == "strict" else "off"
        assert commits.seen[:1] == [(wanted, True)], "one append, one commit, at its level"
        if durability == "batched":
            # Nobody syncs (as the server's worker): the store flushes the WAL by itself,
            # with one synchronous commit that writes, within its window.
            deadline = time.monotonic() + 2.0
            while len(commits.seen) < 2 and time.monotonic() < deadline:
                time.sleep(0.005)
            assert commits.seen[1:] == [("on", True)]
            store.sync(run_id)  # the store writer's sync: one more, now
            assert commits.seen[2:] == [("on", True)]
        else:
            time.sleep(0.1)
            store.sync(run_id)
            assert commits.seen == [(wanted, True)], "nothing flushed by the store"
        commits.seen.clear()
        store.save_run(RunRecord(run_id=run_id, status=Status.SUCCEEDED))
        assert commits.seen == [("on", True)], "run records always commit synchronously"
        commits.seen.clear()
        assert store.claim(RunRecord(run_id=run_id, status=Status.RUNNING), 0)
        assert commits.seen == [("on", True)], "so do claims"
    finally:
        commits.close()
    assert store.load(run_id).steps[("fan", "0", "sq")].status is Status.SUCCEEDED
    store.close()


@pytest.mark.parametrize("durability", LEVELS)
def test_sqlite_syncs_as_the_durability_says(tmp_path: Path, durability: str) -> None:
    """``synchronous`` as the level says (FULL=2, NORMAL=1), on both ways to reach SQLite;
    what a power cut then leaves is in test_powercut.py."""
    wanted = 2 if durability == "strict" else 1
    store = SQLiteRunLogStore(str(tmp_path / "runs.db"), durability=durability)
    assert store._db.execute("PRAGMA synchronous").fetchone()[0] == wanted
    assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()
    sql = SQLRunLogStore(f"sqlite:///{tmp_path / 'sql.db'}", durability=durability)
    with sql.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == wanted
    sql.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A SQL store's config line: a SQLite file, or the session's PostgreSQL."""
    if request.param == "sqlite":
        yield f"type: sqlite, config: {{path: {tmp_path / 'runs.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
        yield f"type: postgres, config: {{url: '{url}'"


def _store(line: str, **more: str) -> RunLogStore:
    """The store a config line names (with ``more`` keys)."""
    kind, _, rest = line.partition(", config: {")
    key, _, value = rest.partition(": ")
    settings = {key: value.strip("'"), **more}
    if kind == "type: sqlite":
        return SQLiteRunLogStore(**settings)
    return SQLRunLogStore(**settings)


@pytest.mark.parametrize("durability", LEVELS)
def test_every_level_records_every_item(tmp_path: Path, database: str, durability: str) -> None:
    (tmp_path / "pipeline.yaml").write_text(MAP)
    store = _store(database, durability=durability)
    run_id = _unique("all")
    result = execute(
        load_pipeline(tmp_path / "pipeline.yaml"),
        file_config(tmp_path),
        {"n": 200},
        run_id=run_id,
        store=store,
    )
    assert result.status is Status.SUCCEEDED
    log = _store(database).load(run_id)
    items = [k for k in log.steps if k[0] == "fan" and len(k) == 3]
    assert len(items) == 200 and all(log.steps[k].status is Status.SUCCEEDED for k in items)
    assert log.run.final_parameters["y"] == [x * x for x in range(200)]


def test_the_default_loses_nothing_reported_to_kill_9(workdir: Path, database: str) -> None:
    """No ``durability`` key: batched. The process kills itself as item 12 starts, right
    after item 11 was reported done: items 0 to 11 are all in the store."""
    log = workdir / "returned.log"
    (workdir / "pipeline.yaml").write_text(CUT)
    (workdir / "params.yaml").write_text(
        f"log: {log}\nat: 12\npause: 0\nspend: 0.002\nxs: {list(range(20))}\n"
    )
    (workdir / "config.yaml").write_text(f"run_log_store: {{{database}}}}}\n")
    env = {"PYTHONPATH": str(TASKS) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    run_id = _unique("kill")
    args = ["-f", "pipeline.yaml", "-c", "config.yaml", "-p", "params.yaml", "--run-id", run_id]
    killed = run_cli("execute", "-q", *args, cwd=workdir, env=env)
    assert killed.returncode == -9, killed.stdout + killed.stderr
    steps = _store(database).load(run_id).steps
    recorded = {int(k[1]) for k, r in steps.items() if len(k) == 3 and r.status is Status.SUCCEEDED}
    assert recorded == set(range(12))


@pytest.mark.parametrize("command", ["execute", "validate"])
@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_an_unknown_durability_is_a_config_error(workdir: Path, command: str, kind: str) -> None:
    """Refused before anything is opened or connected (the URL's database does not exist)."""
    (workdir / "pipeline.yaml").write_text(MAP)
    where = "path: runs.db" if kind == "sqlite" else "url: postgresql+psycopg://u@127.0.0.1:9/none"
    (workdir / "config.yaml").write_text(
        f"run_log_store:\n  type: {kind}\n  config:\n    {where}\n    durability: strct\n"
    )
    out = run_cli(command, "--no-import", "-f", "pipeline.yaml", "-c", "config.yaml", cwd=workdir)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "config.yaml:5: run_log_store.config.durability:" in out.stderr, out.stderr
    assert "expected one of 'strict', 'batched' or 'relaxed', found 'strct'" in out.stderr
    assert "did you mean 'strict'?" in out.stderr
    assert not (workdir / "runs.db").exists()
