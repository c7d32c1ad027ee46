"""Taking a run over is one atomic claim in every store: of any number of concurrent takers
expecting the same generation, exactly one wins; the driver it took the run from is fenced
(its writes are refused), and so is everyone who lost."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conveyor.runlog.base import RunLogBusyError, RunLogStore, RunNotFoundError, RunTakenOverError
from conveyor.runlog.file import FileRunLogStore, file_store
from conveyor.runlog.memory import MemoryRunLogStore
from conveyor.runlog.records import EndEvent, RunRecord, StartEvent, Status
from conveyor.runlog.sql import SQLRunLogStore
from conveyor.runlog.sqlite import SQLiteRunLogStore
from support import need_service
from support.services import S3, fresh_database

Opener = Callable[[], RunLogStore]
KINDS = [
    "memory",
    "file",
    "sqlite",
    "sql-sqlite",
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("s3", marks=pytest.mark.s3),
]


@pytest.fixture(scope="module")
def s3() -> Iterator[S3]:
    try:
        server = S3().start()
        import s3fs  # noqa: F401
    except Exception as exc:  # no moto, no s3fs, or the port would not open
        need_service("s3", f"the S3 endpoint could not start: {exc}")
    yield server
    server.stop()


@pytest.fixture
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens a new store instance on one place each call (takers do not share one)."""
    kind = request.param
    opened: list[RunLogStore] = []
    shared = MemoryRunLogStore()
    if kind == "postgres":
        url = fresh_database(request.getfixturevalue("postgres_url"))
    elif kind == "s3":
        s3: S3 = request.getfixturevalue("s3")
        url = f"s3://{s3.bucket('claim-' + uuid.uuid4().hex[:10])}/runs"

    def make() -> RunLogStore:
        store: RunLogStore
        if kind == "memory":
            return shared
        if kind == "file":
            store = FileRunLogStore(str(tmp_path / "runs"))
        elif kind == "sqlite":
            store = SQLiteRunLogStore(str(tmp_path / "runs.db"))
        elif kind == "sql-sqlite":
            store = SQLRunLogStore(f"sqlite:///{tmp_path / 'sql.db'}")
        elif kind == "postgres":
            store = SQLRunLogStore(url)
        else:
            store = file_store(url, request.getfixturevalue("s3").options)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


def _new_run(opener: Opener) -> str:
    run_id = "c-" + uuid.uuid4().hex[:12]
    opener().save_run(RunRecord(run_id=run_id, started_at=1.0, status=Status.RUNNING, pid=1), create=True)
    return run_id


def _race(
    opener: Opener, run_id: str, takers: int, expected: int
) -> list[tuple[RunLogStore, RunRecord, bool]]:
    """``takers`` threads, each with its own store instance, claim at the same moment."""
    stores = [opener() for _ in range(takers)]
    base = stores[0].load(run_id).run
    records = []
    for n in range(takers):
        record = copy.deepcopy(base)
        record.pid, record.host = 1000 + n, f"taker-{n}"
        records.append(record)
    barrier = threading.Barrier(takers)
    results: list[bool | BaseException] = [False] * takers

    def take(n: int) -> None:
        barrier.wait()
        try:
            results[n] = stores[n].claim(records[n], expected)
        except BaseException as exc:  # reported below, with the taker
            results[n] = exc

    threads = [threading.Thread(target=take, args=(n,)) for n in range(takers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not [r for r in results if isinstance(r, BaseException)], results
    return [(stores[n], records[n], bool(results[n])) for n in range(takers)]


PROPERTY = settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.mark.parametrize("opener", KINDS, indirect=True)
@PROPERTY
@given(takers=st.lists(st.integers(min_value=2, max_value=8), min_size=1, max_size=3))
def test_of_concurrent_takers_exactly_one_wins_and_the_taken_over_are_fenced(
    opener: Opener, takers: list[int]
) -> None:
    run_id = _new_run(opener)
    holder: RunLogStore | None = None
    for generation, count in enumerate(takers):
        outcome = _race(opener, run_id, count, generation)
        winners = [(store, record) for store, record, won in outcome if won]
        assert len(winners) == 1, [won for _, _, won in outcome]
        store, record = winners[0]
        assert record.generation == generation + 1
        seen = opener().load(run_id).run
        assert (seen.generation, seen.pid, seen.host) == (generation + 1, record.pid, record.host)
        # The driver taken over writes nothing more (memory: one instance, so one holder).
        if holder is not None and holder is not store:
            with pytest.raises(RunTakenOverError):
                holder.append(run_id, [StartEvent(["late"], 1, 2.0)])
        holder = store
        holder.append(run_id, [EndEvent(["s", str(generation)], 1, 3.0, Status.SUCCEEDED)])
        holder.save_run(record)  # the winner writes on
        for loser, lost, won in outcome:
            if not won and loser is not store:
                assert lost.generation == generation  # a loser's record is not moved on
                with pytest.raises(RunTakenOverError):
                    loser.save_run(lost)
    steps = opener().load(run_id).steps
    assert ("late",) not in steps
    assert sorted(p[1] for p in steps) == [str(g) for g in range(len(takers))]


@pytest.mark.parametrize("opener", KINDS, indirect=True)
def test_a_stale_expectation_loses_and_a_missing_run_is_not_found(opener: Opener) -> None:
    run_id = _new_run(opener)
    first, second = opener(), opener()
    record = first.load(run_id).run
    assert first.claim(copy.deepcopy(record), 0)
    assert not second.claim(copy.deepcopy(record), 0)  # expected 0, the run is at 1
    assert second.claim(second.load(run_id).run, 1)
    with pytest.raises(RunNotFoundError):
        first.claim(RunRecord(run_id="no-such-run"), 0)


def test_a_taker_that_died_after_claiming_on_the_file_store_is_seen(tmp_path: Path) -> None:
    """The claim file is the record until ``run.json`` is written: a taker killed between the
    two leaves a run the next taker sees at the new generation, under the dead taker's pid."""
    store = FileRunLogStore(str(tmp_path))
    store.save_run(RunRecord(run_id="r", started_at=1.0, pid=1), create=True)
    taker = RunRecord(run_id="r", started_at=1.0, pid=4242, host="elsewhere")
    assert store.claim(taker, 0)
    (tmp_path / "r" / "run.json").write_text(
        (tmp_path / "r" / "claims" / "1.json")
        .read_text()
        .replace('"generation": 1', '"generation": 0')
        .replace("4242", "1")
    )
    seen = FileRunLogStore(str(tmp_path)).load("r").run
    assert (seen.generation, seen.pid) == (1, 4242)


def test_a_kept_fence_holds_a_claim_off_until_the_drivers_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A driver whose appends keep the fence (``keep_fence``: the batched store writer, which
    syncs within milliseconds) holds a claim off only until its next sync; the claim then
    wins and the driver's next append is refused. A driver that never lets go (stopped)
    makes the claim give up after CLAIM_PATIENCE rather than wait for ever; the driver's own
    claim is never held off by its own fence."""
    import conveyor.runlog.file as file_module

    driver = FileRunLogStore(str(tmp_path))
    driver.save_run(RunRecord(run_id="r", started_at=1.0, pid=1), create=True)
    driver.keep_fence("r")
    driver.append("r", [StartEvent(["a"], 1, 2.0)])
    driver.append("r", [EndEvent(["a"], 1, 3.0, Status.SUCCEEDED)])
    taker = FileRunLogStore(str(tmp_path))
    monkeypatch.setattr(file_module, "CLAIM_PATIENCE", 0.2)
    record = taker.load("r").run
    with pytest.raises(RunLogBusyError, match=r"did not let go in 0\.2s") as caught:
        taker.claim(copy.deepcopy(record), 0)  # the driver keeps its fence, unsynced
    assert "stopped" in caught.value.hint
    assert not (tmp_path / "r" / "claims" / ".wanted").exists()
    assert taker.load("r").run.generation == 0
    monkeypatch.setattr(file_module, "CLAIM_PATIENCE", 30.0)
    won: list[bool] = []
    claiming = threading.Thread(target=lambda: won.append(taker.claim(copy.deepcopy(record), 0)))
    claiming.start()
    claiming.join(0.3)
    assert claiming.is_alive()  # waiting for the driver's fence
    driver.sync("r")
    claiming.join(10)
    assert won == [True]
    with pytest.raises(RunTakenOverError):
        driver.append("r", [StartEvent(["late"], 1, 4.0)])
    assert ("late",) not in taker.load("r").steps
    # The new driver keeps its fence too; its own claim of the next generation goes through.
    taker.keep_fence("r")
    taker.append("r", [StartEvent(["b"], 1, 5.0)])
    assert taker.claim(taker.load("r").run, 1)


def test_a_claim_wins_against_a_busy_driver_that_keeps_its_fence(tmp_path: Path) -> None:
    """A driver appending without pause (a map of cheap items), keeping its fence between
    syncs every 10 ms, is taken over promptly: the claim is not starved by the driver
    taking its lock again right after each sync."""
    driver = FileRunLogStore(str(tmp_path))
    driver.save_run(RunRecord(run_id="r", started_at=1.0, pid=1), create=True)
    driver.keep_fence("r")
    stop = threading.Event()
    refused: list[BaseException] = []

    def drive() -> None:
        n = 0
        try:
            while not stop.is_set():
                driver.append("r", [EndEvent(["m", str(n), "t"], 1, 3.0, Status.SUCCEEDED)])
                n += 1
        except RunTakenOverError as exc:
            refused.append(exc)

    def sync() -> None:
        while not stop.is_set():
            stop.wait(0.01)
            driver.sync("r")

    threads = [threading.Thread(target=drive), threading.Thread(target=sync)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.2)
        # The taker is another process, as `conveyor retry --force` is (in this one, the
        # GIL would hand it the processor while the driver is inside its write).
        code = (
            "import sys, time\n"
            "from conveyor.runlog.file import FileRunLogStore\n"
            "taker = FileRunLogStore(sys.argv[1])\n"
            "run = taker.load_record('r')\n"
            "started = time.monotonic()\n"
            "won = taker.claim(run, 0)\n"
            "print(won, time.monotonic() - started)\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=120
        )
        won, took = out.stdout.split()
        assert won == "True", out.stderr
        threads[0].join(5)
        assert refused and not threads[0].is_alive()  # the driver stopped at its next write
    finally:
        stop.set()
        for thread in threads:
            thread.join(5)
    assert float(took) < 2.0, took


def test_a_stale_claim_mark_does_not_slow_a_driver_for_ever(tmp_path: Path) -> None:
    """A claimer killed while it waited leaves claims/.wanted behind: a mark older than any
    claim's wait is ignored, so the driver keeps its fence again."""
    import conveyor.runlog.file as file_module

    driver = FileRunLogStore(str(tmp_path))
    driver.save_run(RunRecord(run_id="r", started_at=1.0, pid=1), create=True)
    driver.keep_fence("r")
    mark = tmp_path / "r" / "claims" / ".wanted"
    mark.parent.mkdir(exist_ok=True)
    mark.touch()
    driver.append("r", [StartEvent(["a"], 1, 2.0)])
    assert "r" not in driver._kept  # a fresh mark: let go after the write
    old = time.time() - 3 * file_module.CLAIM_PATIENCE
    os.utime(mark, (old, old))
    driver.append("r", [StartEvent(["b"], 1, 2.0)])
    assert "r" in driver._kept
    driver.sync("r")
    assert "r" not in driver._kept


@pytest.mark.parametrize(
    "opener", ["sql-sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_an_append_waiting_on_a_claim_in_progress_is_fenced_when_the_claim_commits(opener: Opener) -> None:
    """A SQL store's append is one statement that reads the run's generation under a shared
    lock: one that arrives while a claim holds the row waits for it, then sees the new
    generation and writes nothing."""
    from sqlalchemy import text

    run_id = _new_run(opener)
    holder = opener()
    holder.claim(holder.load(run_id).run, 0)  # writes under generation 1
    holder.append(run_id, [StartEvent(["before"], 1, 1.0)])
    taker = opener()
    assert isinstance(taker, SQLRunLogStore)
    outcome: list[BaseException | None] = []
    with taker.engine.begin() as conn:  # a claim, held open: the row locked, the generation moved on
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT 1 FROM conveyor_runs WHERE run_id = :r FOR UPDATE"), {"r": run_id})
            moved = "jsonb_set(CAST(data AS jsonb), '{generation}', '2')"
        else:
            moved = "json_set(data, '$.generation', 2)"
        conn.execute(
            text(f"UPDATE conveyor_runs SET data = CAST({moved} AS TEXT) WHERE run_id = :r"), {"r": run_id}
        )

        def append() -> None:
            try:
                holder.append(run_id, [StartEvent(["late"], 1, 2.0)])
                outcome.append(None)
            except BaseException as exc:
                outcome.append(exc)

        writer = threading.Thread(target=append)
        writer.start()
        writer.join(0.5)
        assert writer.is_alive(), "the append did not wait for the claim"
    writer.join(30)
    assert len(outcome) == 1 and isinstance(outcome[0], RunTakenOverError), outcome
    assert [p for p in opener().load(run_id).steps] == [("before",)]
