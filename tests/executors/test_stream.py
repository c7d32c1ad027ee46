"""The run's one event stream: who receives it, who may fail, and that every fold agrees."""

from __future__ import annotations

import contextlib
import io
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from rich.console import Console

from conveyor.cli.progress import ConsoleProgress
from conveyor.executors.run import execute, resume
from conveyor.executors.stream import Published, Stream, Subscriber
from conveyor.runlog.base import RunLogUnwritable
from conveyor.runlog.file import FileRunLogStore
from conveyor.runlog.records import EndEvent, NodeEvent, RunRecord, StartEvent, Status, fold
from conveyor.spec.load import load_pipeline
from support.runs import file_config

#: A map, a parallel, a loop and a retried task: every composite the console folds.
PIPELINE = """dag:
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
      next: both
    both:
      type: parallel
      branches:
        left: {start_at: l, steps: {l: {command: ctasks.noop, next: success}}}
        right: {start_at: r, steps: {r: {command: ctasks.flaky, retry: {attempts: 3}, next: success}}}
      next: grow
    grow:
      type: loop
      max_iterations: 10
      break_on: done
      index_as: i
      branch:
        start_at: body
        steps:
          body: {command: ctasks.loop_body, returns: [total, done], next: success}
      next: success
"""


class Recorder(Subscriber):
    """Keeps every event it is given, in order."""

    def __init__(self) -> None:
        self.events: list[StartEvent | EndEvent | NodeEvent] = []
        self.runs: list[RunRecord] = []

    def receive(self, batch: Sequence[Published]) -> None:
        for record in batch:
            if isinstance(record, RunRecord):
                self.runs.append(record)
            elif isinstance(record, StartEvent | EndEvent | NodeEvent):
                self.events.append(record)


class Raises(Subscriber):
    """Fails every time it is called."""

    def __init__(self) -> None:
        self.calls = 0

    def receive(self, batch: Sequence[Published]) -> None:
        self.calls += 1
        raise ValueError("display broke")

    def tick(self, now: float) -> None:
        self.calls += 1
        raise ValueError("clock broke")


def _run(
    tmp_path: Path, subscribers: Sequence[Subscriber], run_id: str = "r1"
) -> tuple[Status, FileRunLogStore]:
    (tmp_path / "pipeline.yaml").write_text(PIPELINE)
    params = {"n": 5, "counter": str(tmp_path / "count"), "fail_times": 1, "total": 0, "stop_at": 2}
    result = execute(
        load_pipeline(tmp_path / "pipeline.yaml"),
        file_config(tmp_path),
        params,
        run_id=run_id,
        subscribers=subscribers,
    )
    return result.status, FileRunLogStore(str(tmp_path / "runs"))


def _json(steps: dict[tuple[str, ...], object]) -> dict[tuple[str, ...], object]:
    return {key: record.to_json() for key, record in steps.items()}  # type: ignore[attr-defined]


def test_the_console_fold_equals_the_stored_fold(tmp_path: Path) -> None:
    recorder = Recorder()
    buffer = io.StringIO()
    console = ConsoleProgress(Console(file=buffer, width=200))
    status, store = _run(tmp_path, [recorder, console])
    assert status is Status.SUCCEEDED
    stored = store.load("r1").steps
    # The events published are the events stored: folded the same way, the same records.
    assert _json(fold(recorder.events)) == _json(stored)
    assert [r.status for r in recorder.runs] == [Status.RUNNING, Status.SUCCEEDED]
    # The console keeps the steps outside map items, each exactly as the run log folds it.
    outside = {k: r for k, r in stored.items() if not (len(k) > 1 and k[0] == "fan")}
    assert _json(console.records) == _json(outside)
    assert stored[("both", "right", "r")].status is Status.SUCCEEDED
    assert len(stored[("both", "right", "r")].attempts) == 2  # the retry is in both folds
    assert ("grow", "2", "body") in console.records and ("fan", "4", "sq") in stored
    lines = buffer.getvalue().splitlines()
    assert lines[0] == f"run r1  pipeline {tmp_path.name}"
    assert "  ✓ fan (map)  5 items, 0 failed" in lines
    assert any(line.startswith("  ✗ both / right / r  ") and "flaky failure 1" in line for line in lines)


def test_a_failing_subscriber_is_reported_once_and_detached(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken, recorder = Raises(), Recorder()
    status, store = _run(tmp_path, [broken, recorder])
    assert status is Status.SUCCEEDED
    assert store.load("r1").run.status is Status.SUCCEEDED
    assert broken.calls == 1  # detached at its first failure: never called again
    err = capsys.readouterr().err
    assert err.count("failed and was detached") == 1, err
    assert "Raises failed and was detached (ValueError: display broke); the run goes on without it" in err
    # The others got everything.
    assert _json(fold(recorder.events)) == _json(store.load("r1").steps)


class FailingStore(FileRunLogStore):
    """A real file store whose disk fills up after some appends."""

    def __init__(self, path: str, appends: int) -> None:
        super().__init__(path)
        self.left = appends

    def append(self, run_id: str, events: Sequence[object]) -> None:  # type: ignore[override]
        if self.left == 0:
            raise OSError(28, "No space left on device")
        self.left -= 1
        super().append(run_id, events)  # type: ignore[arg-type]


def test_a_store_writer_failure_fails_the_run(tmp_path: Path) -> None:
    store = FailingStore(str(tmp_path / "runs"), appends=2)
    recorder = Recorder()
    (tmp_path / "pipeline.yaml").write_text(PIPELINE)
    params = {"n": 5, "counter": str(tmp_path / "count"), "fail_times": 1, "total": 0, "stop_at": 2}
    with pytest.raises(RunLogUnwritable, match="run 'r2' stopped: No space left on device while recording"):
        execute(
            load_pipeline(tmp_path / "pipeline.yaml"),
            file_config(tmp_path),
            params,
            run_id="r2",
            subscribers=[recorder],
            store=store,
        )
    run = FileRunLogStore(str(tmp_path / "runs")).load("r2").run
    assert run.status is Status.FAILED and "No space left on device" in (run.error or "")
    assert recorder.runs[-1].status is Status.FAILED  # the others were told how it ended


def test_a_slow_subscriber_does_not_slow_the_publisher() -> None:
    release = threading.Event()

    class Slow(Subscriber):
        def __init__(self) -> None:
            self.got: list[Published] = []

        def receive(self, batch: Sequence[Published]) -> None:
            release.wait(5)
            self.got.extend(batch)

    slow = Slow()
    stream = Stream([slow])
    stream.start()
    began = time.perf_counter()
    for n in range(100):
        stream.publish([StartEvent(["s"], n, 0.0)])
    took = time.perf_counter() - began
    release.set()
    stream.close()
    assert took < 1.0  # not 100 waits: the slow subscriber had the first batch only
    assert [e.attempt for e in slow.got] == list(range(100))  # type: ignore[union-attr]


def test_an_essential_subscribers_error_goes_to_the_publisher() -> None:
    class Writer(Subscriber):
        essential = True

        def receive(self, batch: Sequence[Published]) -> None:
            raise OSError(28, "No space left on device")

    reports: list[str] = []
    stream = Stream([Writer()], report=reports.append)
    with pytest.raises(OSError, match="No space left"):
        stream.publish([StartEvent(["s"], 1, 0.0)])
    stream.close()
    assert reports == []


def test_a_stuck_subscriber_does_not_hold_the_end_of_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    import conveyor.executors.stream as stream_module

    monkeypatch.setattr(stream_module, "CLOSE_WAIT", 0.2)
    never = threading.Event()

    class Stuck(Subscriber):
        def receive(self, batch: Sequence[Published]) -> None:
            never.wait(5)

    reports: list[str] = []
    stream = Stream([Stuck()], report=reports.append)
    stream.start()
    stream.publish([StartEvent(["s"], 1, 0.0)])
    began = time.perf_counter()
    stream.close()
    assert time.perf_counter() - began < 2
    assert reports == ["conveyor: gave up waiting for Stuck after 0.2s"]
    never.set()


def test_what_an_earlier_driver_left_open_is_closed_through_the_stream(tmp_path: Path) -> None:
    """A resumed run records the end of the attempts its earlier driver left open: those
    closing events go through the stream like the rest, so the console and the UI see the
    step end as the store does (they used to be written to the store behind their back)."""
    (tmp_path / "pipeline.yaml").write_text(PIPELINE)
    params = {"n": 2, "counter": str(tmp_path / "count"), "fail_times": 9, "total": 0, "stop_at": 2}
    loaded = load_pipeline(tmp_path / "pipeline.yaml")
    first = execute(loaded, file_config(tmp_path), params, run_id="r2")
    assert first.status is Status.FAILED  # flaky fails all its attempts
    store = FileRunLogStore(str(tmp_path / "runs"))
    # The driver of a fourth attempt died: its start is recorded, its end never was.
    store.append("r2", [StartEvent(["both", "right", "r"], 4, time.time(), type="task")])
    recorder = Recorder()
    resume("r2", file_config(tmp_path), subscribers=[recorder], loaded=loaded)
    closing = [
        e
        for e in recorder.events
        if isinstance(e, EndEvent) and e.path == ["both", "right", "r"] and e.attempt == 4
    ]
    assert len(closing) == 1 and closing[0].status is Status.INTERRUPTED
    stored = store.load("r2").steps[("both", "right", "r")]
    assert [a.status for a in stored.attempts if a.attempt == 4] == [Status.INTERRUPTED]


def test_a_running_steps_start_is_published_and_stored_while_it_runs(tmp_path: Path) -> None:
    """An attempt's start goes out with its end (one publication per attempt); one still
    running is published by the ticker within a tick, and the store writer writes it as
    before, so a viewer of the store sees the step running (``runs show``, the UI)."""
    (tmp_path / "pipeline.yaml").write_text(
        "dag:\n  start_at: wait\n  steps:\n    wait: {command: ctasks.sleep_for, next: success}\n"
    )
    seen: list[tuple[float, str]] = []
    stored: list[bool] = []

    class Watch(Subscriber):
        def receive(self, batch: Sequence[Published]) -> None:
            for record in batch:
                if isinstance(record, StartEvent | EndEvent) and record.path == ["wait"]:
                    seen.append((time.monotonic(), type(record).__name__))

        def tick(self, now: float) -> None:
            store = FileRunLogStore(str(tmp_path / "runs"))
            with contextlib.suppress(Exception):
                record = store.load("slow").steps.get(("wait",))
                stored.append(record is not None and record.status is Status.RUNNING)

    result = execute(
        load_pipeline(tmp_path / "pipeline.yaml"),
        file_config(tmp_path),
        {"seconds": 1.5},
        run_id="slow",
        subscribers=[Watch()],
    )
    assert result.status is Status.SUCCEEDED
    assert [kind for _, kind in seen] == ["StartEvent", "EndEvent"]
    assert seen[1][0] - seen[0][0] > 0.8  # the start came while it ran, not with its end
    assert any(stored)  # the store held it as running while it ran
