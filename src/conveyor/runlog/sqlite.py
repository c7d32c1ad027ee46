"""One SQLite file for all runs; WAL mode so readers never block the writer.

``durability`` sets when a commit is on disk (SQLite's ``synchronous``, in WAL mode):
``strict`` is ``FULL``, each commit syncs the WAL; ``batched`` and ``relaxed`` are
``NORMAL``, each commit is written to the WAL (a killed process loses nothing) and the WAL
is synced at checkpoints; under ``batched`` the store writer also syncs it (:meth:`sync`)
once per group, within a few milliseconds. ``OFF`` is never used: a power cut could then
corrupt the whole file, not only lose the last events.

Writes that must see the run's generation first (a claim, a driver's fenced writes) run in
``BEGIN IMMEDIATE`` transactions: SQLite admits one such writer at a time, so a claim's
read-compare-write, and a fenced write's check-then-write, are each atomic."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

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
from conveyor.runlog.records import Event, RunRecord

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, status TEXT, started_at REAL, data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_run ON events (run_id, seq);
CREATE TABLE IF NOT EXISTS logs (location TEXT PRIMARY KEY, text TEXT NOT NULL);
"""


#: SQLite's ``synchronous`` for each durability (WAL mode; see the module's text).
SYNCHRONOUS: dict[Durability, str] = {"strict": "FULL", "batched": "NORMAL", "relaxed": "NORMAL"}


class SQLiteStoreConfig(BaseModel):
    """The ``sqlite`` store's settings, checked before anything starts (``conveyor validate``
    too), so that a wrong ``durability`` is reported with its place in the config."""

    model_config = ConfigDict(extra="forbid")

    path: str = ".conveyor/runs.db"
    durability: Durability = "batched"


def fsync_file(path: str) -> None:
    """``fsync`` the file at ``path`` if there is one (a WAL file comes and goes)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SQLiteRunLogStore(RunLogStore):
    """All runs in one SQLite file: one file to copy, readers that never block the writer."""

    config_model = SQLiteStoreConfig

    def __init__(self, path: str = ".conveyor/runs.db", durability: str = "batched") -> None:
        settings = SQLiteStoreConfig.model_validate({"path": path, "durability": durability})
        self.durability = settings.durability
        self.path = Path(path).expanduser().absolute()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.where = str(self.path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={SYNCHRONOUS[self.durability]}")
        self._db.executescript(SCHEMA)

    @contextlib.contextmanager
    def _immediate(self) -> Iterator[None]:
        """One transaction that holds SQLite's write lock from its first statement."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.rollback()
                raise
            self._db.commit()

    def _generation(self, run_id: str) -> int | None:
        row = self._db.execute(
            "SELECT coalesce(json_extract(data, '$.generation'), 0) FROM runs WHERE run_id = ?", (run_id,)
        ).fetchone()
        return None if row is None else int(row[0])

    def _fence(self, run_id: str, held: int | None) -> None:
        if held is None:
            return
        current = self._generation(run_id)
        if current is not None and current > held:
            raise RunTakenOverError(run_id, self.where, held, current)

    def save_run(self, run: RunRecord, create: bool = False) -> None:
        if create:
            try:
                with self._lock, self._db:
                    self._db.execute(
                        "INSERT INTO runs (run_id, status, started_at, data) VALUES (?, ?, ?, ?)",
                        (run.run_id, str(run.status), run.started_at, encode_run(run)),
                    )
            except sqlite3.IntegrityError:
                raise RunExistsError(run.run_id, self.where) from None
            self._hold(run.run_id, run.generation)
            return
        with self._immediate():
            self._fence(run.run_id, run.generation)
            self._db.execute(
                "INSERT INTO runs (run_id, status, started_at, data) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (run_id) DO UPDATE SET status = excluded.status, "
                "started_at = excluded.started_at, data = excluded.data",
                (run.run_id, str(run.status), run.started_at, encode_run(run)),
            )
        self._hold(run.run_id, run.generation)

    def claim(self, run: RunRecord, expected_generation: int) -> bool:
        mine = dataclasses.replace(run, generation=expected_generation + 1)
        with self._immediate():
            current = self._generation(run.run_id)
            if current is None:
                raise RunNotFoundError(run.run_id, self.where)
            if current != expected_generation:
                return False
            self._db.execute(
                "UPDATE runs SET status = ?, started_at = ?, data = ? WHERE run_id = ?",
                (str(mine.status), mine.started_at, encode_run(mine), run.run_id),
            )
        run.generation = mine.generation
        self._hold(run.run_id, run.generation)
        return True

    def append(self, run_id: str, events: Sequence[Event]) -> None:
        rows = [(run_id, encode_event(e)) for e in events]
        held = self._held(run_id)
        with self._immediate() if held is not None else self._plain():
            self._fence(run_id, held)
            self._db.executemany("INSERT INTO events (run_id, data) VALUES (?, ?)", rows)

    def sync(self, run_id: str) -> None:
        """``batched``: put every commit so far on disk, for the whole group at once. In WAL
        mode a commit is durable once its WAL frames are: one ``fsync`` of the WAL file
        (any descriptor of it will do) does what ``synchronous=FULL`` does per commit."""
        if self.durability != "batched":
            return  # strict: each commit synced itself; relaxed: the OS decides
        fsync_file(f"{self.path}-wal")

    @contextlib.contextmanager
    def _plain(self) -> Iterator[None]:
        with self._lock, self._db:
            yield

    def load(self, run_id: str) -> RunLog:
        with self._lock:
            row = self._db.execute("SELECT data FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if row is None:
                raise RunNotFoundError(run_id, self.where)
            events = self._db.execute(
                "SELECT data FROM events WHERE run_id = ? ORDER BY seq", (run_id,)
            ).fetchall()
        return RunLog(decode_run_of(run_id, self.where, row[0]), *fold_lines(e[0] for e in events))

    def load_record(self, run_id: str) -> RunRecord:
        with self._lock:
            row = self._db.execute("SELECT data FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            raise RunNotFoundError(run_id, self.where)
        return decode_run_of(run_id, self.where, row[0])

    def read_event_lines(self, run_id: str, cursor: Any = None) -> tuple[list[bytes | str], Any]:
        """Rows after sequence number ``cursor``."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, data FROM events WHERE run_id = ? AND seq > ? ORDER BY seq",
                (run_id, int(cursor or 0)),
            ).fetchall()
        return [r[1] for r in rows], (rows[-1][0] if rows else int(cursor or 0))

    def log_location(self, run_id: str, name: str) -> str:
        return f"sqlite:{run_id}/{name}"

    def list_runs(self, limit: int = 50) -> list[RunRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT run_id, data FROM runs ORDER BY started_at DESC LIMIT ?", (limit,)
            ).fetchall()
        return decode_runs((r[0], r[1]) for r in rows)

    def write_log(self, run_id: str, name: str, text: str) -> str:
        location = self.log_location(run_id, name)
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO logs (location, text) VALUES (?, ?)", (location, text))
        return location

    def read_log(self, location: str) -> str:
        with self._lock:
            row = self._db.execute("SELECT text FROM logs WHERE location = ?", (location,)).fetchone()
        return str(row[0]) if row else ""

    def close(self) -> None:
        with self._lock:
            self._db.close()
