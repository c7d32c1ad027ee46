"""Run logs in a SQL database through SQLAlchemy: PostgreSQL (``postgresql+psycopg://``) in
production, SQLite for a single machine. The conveyor server keeps its runs' logs here, in
its own database. Needs the ``postgres`` extra for PostgreSQL (psycopg) and SQLAlchemy.

The run's generation (its driver's fencing token) lives in the record's JSON. Taking a run
over reads it under a row lock (``SELECT ... FOR UPDATE``; on SQLite, ``BEGIN IMMEDIATE``
admits one writer) and raises it by one in the same transaction; a driver's writes read it
under a shared lock (``FOR SHARE``) in their own transaction, so none lands after a claim (an
append is one statement, fence and insert, committed on its own on PostgreSQL).

``durability`` sets when appended events are on disk (claims and run records always commit
synchronously: a claim lost to a crash of the database could let two drivers write a run).
On PostgreSQL, ``strict`` commits each append with ``synchronous_commit`` on (the commit
waits for its WAL to be flushed); ``batched`` and ``relaxed`` commit appends with it off for
the store's connections (claims and records set it back for their own transaction): the
commit is visible and survives the client being killed at once, and reaches disk when the
WAL is next flushed. Under ``batched`` it is flushed once per group, within a few
milliseconds: by the store writer (:meth:`SQLRunLogStore.sync`), or else by the store itself
(:mod:`conveyor.runlog.groupsync`: the server's worker writes what a run relays and never
syncs); under ``relaxed`` PostgreSQL's WAL writer does, within three times
``wal_writer_delay`` (600 ms by default). On SQLite the levels are those of
:mod:`conveyor.runlog.sqlite`, ``batched`` syncing the WAL the same way."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, TypedDict

from pydantic import BaseModel, ConfigDict

from conveyor.runlog.base import (
    Durability,
    RunExistsError,
    RunLog,
    RunLogStore,
    RunNotFoundError,
    RunTakenOverError,
)
from conveyor.runlog.codec import (
    decode_run_of,
    decode_runs,
    encode_event,
    encode_run,
    fold_lines,
)
from conveyor.runlog.groupsync import GroupSync
from conveyor.runlog.records import Event, RunRecord
from conveyor.runlog.sqlite import SYNCHRONOUS, fsync_file


class RunRow(TypedDict):
    """A row of the runs table: the record's JSON, and the columns that list and sort runs."""

    run_id: str
    status: str
    started_at: float | None
    data: str


def tables(metadata: Any) -> tuple[Any, Any, Any]:
    """The run log tables, defined on ``metadata`` (shared with the server's migrations)."""
    from sqlalchemy import BigInteger, Column, Float, Index, Integer, String, Table, Text

    runs = Table(
        "conveyor_runs",
        metadata,
        Column("run_id", String(64), primary_key=True),
        Column("status", String(32)),
        Column("started_at", Float),
        Column("data", Text, nullable=False),
    )
    events = Table(
        "conveyor_events",
        metadata,
        Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
        Column("run_id", String(64), nullable=False),
        Column("data", Text, nullable=False),
        Index("conveyor_events_run", "run_id", "seq"),
    )
    logs = Table(
        "conveyor_logs",
        metadata,
        Column("location", String(300), primary_key=True),
        Column("text", Text, nullable=False),
    )
    return runs, events, logs


def make_engine(url: str, synchronous: str = "NORMAL") -> Any:
    """A SQLAlchemy engine; on SQLite, one writer at a time (BEGIN IMMEDIATE) in WAL mode,
    with ``synchronous`` as given (see :data:`conveyor.runlog.sqlite.SYNCHRONOUS`)."""
    if synchronous not in ("FULL", "NORMAL"):
        raise ValueError(f"SQLite synchronous must be FULL or NORMAL, not {synchronous!r}")
    try:
        from sqlalchemy import create_engine, event
    except ImportError:
        raise ImportError("the SQL run log store needs: pip install 'conveyor[postgres]'") from None
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite(dbapi: Any, _: Any) -> None:
            dbapi.isolation_level = None  # transactions are begun below, IMMEDIATE
            cursor = dbapi.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={synchronous}")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            # One writer at a time, decided when the transaction starts, not mid-way.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    try:
        # No pre-ping (a round trip per checkout); recycle idle connections instead.
        return create_engine(url, pool_recycle=300, pool_size=20, max_overflow=20)
    except ImportError as exc:
        raise ImportError(f"{exc}: pip install 'conveyor[postgres]'") from None


def reader(engine: Any) -> Any:
    """An engine for reads that need no transaction: on PostgreSQL, autocommit saves the
    BEGIN and ROLLBACK round trips a plain SELECT would otherwise cost. A pool of its own,
    whose connections stay in autocommit: switching a shared pool's connection to it and
    back on every checkout cost as much as the SELECT (status polling reads twice). Its
    reads are short: few connections are kept open (5; up to 15 at once), so that the extra
    pool adds few to the database's count (an API process has two: its state's and its
    store's). The caller disposes of it (``SQLRunLogStore.close`` does)."""
    if engine.dialect.name == "sqlite":
        return engine
    from sqlalchemy import create_engine

    return create_engine(
        engine.url, isolation_level="AUTOCOMMIT", pool_recycle=300, pool_size=5, max_overflow=10
    )


def _asynchronous_commits(dbapi: Any, _: Any) -> None:
    """A new PostgreSQL connection of a non-strict store: its commits do not wait for their
    WAL (committed, so that the pool's rollback keeps the setting)."""
    cursor = dbapi.cursor()
    cursor.execute("SET synchronous_commit TO off")
    cursor.close()
    dbapi.commit()


class SQLStoreConfig(BaseModel):
    """The ``postgres`` (``sql``) store's settings, checked before anything starts, so that
    a wrong ``durability`` is reported with its place in the config."""

    model_config = ConfigDict(extra="forbid")

    url: str
    create: bool = True
    durability: Durability = "batched"


#: A fenced append on PostgreSQL (:meth:`SQLRunLogStore._fenced_append`): the events are
#: inserted only if the run's row, locked ``FOR SHARE`` as the fence's own read locks it,
#: holds a generation at most the one this store writes under; in their given order.
_PG_FENCED_APPEND = """
WITH fence AS (
    SELECT 1 FROM conveyor_runs
    WHERE run_id = %(run_id)s
      AND COALESCE(CAST(CAST(data AS json) ->> 'generation' AS integer), 0) <= %(held)s
    FOR SHARE
)
INSERT INTO conveyor_events (run_id, data)
SELECT %(run_id)s, given.line FROM fence, unnest(CAST(%(lines)s AS text[])) WITH ORDINALITY AS given(line, n)
ORDER BY given.n
"""
#: The same on SQLite, one row each, in the ``BEGIN IMMEDIATE`` transaction (one writer).
_SQLITE_FENCED_APPEND = """
INSERT INTO conveyor_events (run_id, data) SELECT ?, ? WHERE EXISTS (
    SELECT 1 FROM conveyor_runs WHERE run_id = ? AND COALESCE(json_extract(data, '$.generation'), 0) <= ?
)
"""


class SQLRunLogStore(RunLogStore):
    """Runs in a SQL database (the server's own): many writers, transactions, one backup."""

    config_model = SQLStoreConfig

    def __init__(self, url: str, create: bool = True, durability: str = "batched") -> None:
        from sqlalchemy import MetaData

        settings = SQLStoreConfig.model_validate({"url": url, "create": create, "durability": durability})
        self.durability = settings.durability
        self.url = url
        self.where = url.split("@")[-1]  # never print credentials
        self.engine = make_engine(url, SYNCHRONOUS[self.durability])
        self._postgres = self.engine.dialect.name == "postgresql"
        #: Whether appends commit without waiting for their WAL (then everything else
        #: asks for it, in its own transaction).
        self._async = self._postgres and self.durability != "strict"
        if self._async:
            from sqlalchemy import event

            # Set once per connection, not per append: a round trip costs more than a flush.
            event.listen(self.engine, "connect", _asynchronous_commits)
        #: ``batched``: what was appended is synced within a few milliseconds, by the caller
        #: (the store writer, per group) or else by this store itself (the server's worker
        #: writes what a run relays, and never syncs).
        self._group = GroupSync(self._flush) if self.durability == "batched" else None
        self._last_run: str | None = None
        self.reader = reader(self.engine)
        self.metadata = MetaData()
        self.runs, self.events, self.logs = tables(self.metadata)
        if create:
            self.metadata.create_all(self.engine, checkfirst=True)

    def _generation(self, conn: Any, run_id: str, share: bool) -> int | None:
        """The run's generation read under a row lock (None: no such run). Read in SQL from
        the record's JSON, so a fenced append does not fetch and decode the whole record."""
        from sqlalchemy import Integer, cast, func, literal_column, select

        if self.engine.dialect.name == "sqlite":
            value: Any = func.json_extract(self.runs.c.data, "$.generation")
        else:
            value = cast(literal_column("CAST(conveyor_runs.data AS json) ->> 'generation'"), Integer)
        query = select(func.coalesce(value, 0)).where(self.runs.c.run_id == run_id)
        row = conn.execute(query.with_for_update(read=share)).first()
        return None if row is None else int(row[0])

    def _fence(self, conn: Any, run_id: str, held: int | None, share: bool = True) -> bool:
        """Raise RunTakenOverError if the run was claimed past ``held``; whether it exists."""
        current = self._generation(conn, run_id, share)
        if held is not None and current is not None and current > held:
            raise RunTakenOverError(run_id, self.where, held, current)
        return current is not None

    def _row(self, run: RunRecord) -> RunRow:
        return {
            "run_id": run.run_id,
            "status": str(run.status),
            "started_at": run.started_at,
            "data": encode_run(run),
        }

    def save_run(self, run: RunRecord, create: bool = False) -> None:
        from sqlalchemy import insert, update
        from sqlalchemy.exc import IntegrityError

        row = self._row(run)
        if create:
            try:
                with self.engine.begin() as conn:
                    self._synchronous(conn)
                    conn.execute(insert(self.runs).values(**row))
            except IntegrityError:
                raise RunExistsError(run.run_id, self.where) from None
            self._hold(run.run_id, run.generation)
            return
        with self.engine.begin() as conn:
            self._synchronous(conn)
            # Updated in place (never deleted and inserted): a claim waiting on the row's
            # lock then reads the new version of the row, not no row at all.
            if self._fence(conn, run.run_id, run.generation, share=False):
                conn.execute(update(self.runs).where(self.runs.c.run_id == run.run_id).values(**row))
            else:
                conn.execute(insert(self.runs).values(**row))
        self._hold(run.run_id, run.generation)

    def claim(self, run: RunRecord, expected_generation: int) -> bool:
        from sqlalchemy import update

        mine = dataclasses.replace(run, generation=expected_generation + 1)
        with self.engine.begin() as conn:
            self._synchronous(conn)
            current = self._generation(conn, run.run_id, share=False)
            if current is None:
                raise RunNotFoundError(run.run_id, self.where)
            if current != expected_generation:
                return False
            conn.execute(update(self.runs).where(self.runs.c.run_id == run.run_id).values(**self._row(mine)))
        run.generation = mine.generation
        self._hold(run.run_id, run.generation)
        return True

    def append(self, run_id: str, events: Sequence[Event]) -> None:
        from sqlalchemy import insert

        lines = [encode_event(e) for e in events]
        held = self._held(run_id)
        if held is not None and self._fenced_append(run_id, held, lines):
            pass
        else:  # not fenced, or the fence did not let it in: the reason is found (and raised) here
            with self.engine.begin() as conn:
                if held is not None:
                    self._fence(conn, run_id, held)
                conn.execute(insert(self.events), [{"run_id": run_id, "data": line} for line in lines])
        if self._group is not None:
            self._last_run = run_id
            self._group.written()

    def _fenced_append(self, run_id: str, held: int, lines: list[str]) -> bool:
        """Append ``lines`` if the run's generation is still at most ``held``, in one
        statement: the run's row read under a shared lock and the events inserted, committed
        on their own (PostgreSQL: one round trip for what took four, BEGIN, the fence's
        read, the insert and COMMIT; SQLite: one statement in the transaction). The commit
        is the session's as before (``durability``). False when nothing was appended: the
        run was taken over, or has no record; the caller's transaction then says which."""
        if self._postgres:
            with self.engine.connect() as conn:
                result = conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                    _PG_FENCED_APPEND, {"run_id": run_id, "held": held, "lines": lines}
                )
        else:
            with self.engine.begin() as conn:
                result = conn.exec_driver_sql(
                    _SQLITE_FENCED_APPEND, [(run_id, line, run_id, held) for line in lines]
                )
        return bool(result.rowcount == len(lines))

    def sync(self, run_id: str) -> None:
        """``batched``: put every append so far on disk, for the whole group at once (strict:
        each append's commit waited; relaxed: the database decides)."""
        if self._group is not None:
            self._group.sync()

    def _flush(self) -> None:
        """Every commit so far on disk. On PostgreSQL a synchronous commit flushes the WAL up
        to itself, so all the earlier asynchronous ones with it; it must write something to
        be one (a commit that wrote nothing waits for nothing): a run's row, unchanged."""
        if not self._postgres:
            database = self.engine.url.database
            if database and database != ":memory:":
                fsync_file(f"{database}-wal")
            return
        run_id = self._last_run
        if run_id is None:
            return
        from sqlalchemy import update

        with self.engine.begin() as conn:
            self._synchronous(conn)
            conn.execute(
                update(self.runs).where(self.runs.c.run_id == run_id).values(status=self.runs.c.status)
            )

    def _synchronous(self, conn: Any) -> None:
        """This transaction's commit waits for its WAL to be flushed, whatever the session's
        setting (a claim, a run's record, a batched group's flush)."""
        if self._async:
            conn.exec_driver_sql("SET LOCAL synchronous_commit TO on")

    def load(self, run_id: str) -> RunLog:
        from sqlalchemy import select

        with self.reader.connect() as conn:
            row = conn.execute(select(self.runs.c.data).where(self.runs.c.run_id == run_id)).first()
            if row is None:
                raise RunNotFoundError(run_id, self.where)
            events = conn.execute(
                select(self.events.c.data).where(self.events.c.run_id == run_id).order_by(self.events.c.seq)
            ).all()
        return RunLog(decode_run_of(run_id, self.where, row[0]), *fold_lines(e[0] for e in events))

    def load_record(self, run_id: str) -> RunRecord:
        from sqlalchemy import select

        with self.reader.connect() as conn:
            row = conn.execute(select(self.runs.c.data).where(self.runs.c.run_id == run_id)).first()
        if row is None:
            raise RunNotFoundError(run_id, self.where)
        return decode_run_of(run_id, self.where, row[0])

    def read_event_lines(self, run_id: str, cursor: Any = None) -> tuple[list[bytes | str], Any]:
        """Rows after sequence number ``cursor``."""
        from sqlalchemy import select

        after = int(cursor or 0)
        with self.reader.connect() as conn:
            rows = conn.execute(
                select(self.events.c.seq, self.events.c.data)
                .where(self.events.c.run_id == run_id, self.events.c.seq > after)
                .order_by(self.events.c.seq)
            ).all()
        return [r[1] for r in rows], (int(rows[-1][0]) if rows else after)

    def log_location(self, run_id: str, name: str) -> str:
        return f"sql:{run_id}/{name}"

    def list_runs(self, limit: int = 50) -> list[RunRecord]:
        from sqlalchemy import select

        with self.reader.connect() as conn:
            rows = conn.execute(
                select(self.runs.c.run_id, self.runs.c.data)
                .order_by(self.runs.c.started_at.desc())
                .limit(limit)
            ).all()
        return decode_runs((r[0], r[1]) for r in rows)

    def write_log(self, run_id: str, name: str, text: str) -> str:
        from sqlalchemy import delete, insert

        location = self.log_location(run_id, name)
        text = text.replace("\x00", "\\x00")  # PostgreSQL text holds no NUL: shown, escaped
        with self.engine.begin() as conn:
            conn.execute(delete(self.logs).where(self.logs.c.location == location))
            conn.execute(insert(self.logs).values(location=location, text=text))
        return location

    def read_log(self, location: str) -> str:
        from sqlalchemy import select

        with self.reader.connect() as conn:
            row = conn.execute(select(self.logs.c.text).where(self.logs.c.location == location)).first()
        return str(row[0]) if row else ""

    def close(self) -> None:
        if self._group is not None:
            self._group.close()  # what is due is synced first
        if self.reader is not self.engine:
            self.reader.dispose()
        self.engine.dispose()
