"""An error message is a summary: a record keeps at most MAX_ERROR characters of it (head
and tail, saying how much was cut); the step's log keeps the whole message."""

from __future__ import annotations

from pathlib import Path

from conveyor.runlog.records import MAX_ERROR, brief_error
from conveyor.testing import run_pipeline

PIPELINE = """
dag:
  start_at: boom
  steps:
    boom: {command: ctasks.fail_always, next: success}
"""


def test_a_short_error_is_kept_whole_and_a_long_one_cut_in_the_middle() -> None:
    assert brief_error(None) is None
    assert brief_error("x" * MAX_ERROR) == "x" * MAX_ERROR
    long = "H" * 10 + "m" * 1_000_000 + "T" * 10
    cut = brief_error(long)
    assert cut is not None and len(cut) < MAX_ERROR + 100
    assert cut.startswith("H" * 10) and cut.endswith("T" * 10)
    assert f"({len(long) - MAX_ERROR} characters cut: the step's log has the whole message)" in cut


def test_a_step_failing_with_megabytes_of_message_records_a_brief_error(tmp_path: Path) -> None:
    (tmp_path / "pipeline.yaml").write_text(PIPELINE)
    message = "start " + "z" * 2_000_000 + " end"
    run = run_pipeline(tmp_path / "pipeline.yaml", {"message": message}, run_id="big", cwd=tmp_path)
    assert run.status.value == "failed"
    attempt = run.store.load("big").steps[("boom",)].attempts[-1]
    assert attempt.error is not None and len(attempt.error) < MAX_ERROR + 100
    assert attempt.error.startswith("RuntimeError: start ") and attempt.error.endswith(" end")
    assert attempt.log is not None
    assert message in run.store.read_log(attempt.log)  # nothing is lost: the log has it whole
