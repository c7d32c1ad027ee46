"""The local executor: chains, composites, retries, timeouts, isolation, capture."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from support.runs import file_config, run_yaml, runlog, step, steps_of, variant

CHAIN = """
dag:
  start_at: first
  steps:
    first: {command: ctasks.add, returns: [c], next: second}
    second: {command: ctasks.square, returns: [{name: y, kind: metric}], next: success}
"""


def test_chain_records_run_and_steps(workdir: Path) -> None:
    both_add = variant(CHAIN, lambda d: steps_of(d)["second"].update(command="ctasks.add"))
    result = run_yaml(workdir, both_add, {"a": 1, "b": 2})
    assert result.ok
    log = runlog(workdir, result.run_id)
    run = log.run
    assert run.status == "succeeded" and run.initial_parameters == {"a": 1, "b": 2}
    assert run.final_parameters == {"a": 1, "b": 2, "c": 3, "y": 3}
    assert len(run.pipeline_hash) == 64 and run.pipeline["dag"]["start_at"] == "first"
    assert run.ended_at >= run.started_at
    first = step(log, "first")
    (attempt,) = first.attempts
    assert attempt.status == "succeeded" and attempt.returns == {"c": 3}
    assert attempt.end >= attempt.start
    assert step(log, "second").attempts[0].metrics == {"y": 3}


def test_failure_exits_with_error_recorded(workdir: Path) -> None:
    result = run_yaml(
        workdir,
        "dag:\n  start_at: a\n  steps:\n    a: {command: ctasks.fail_always, next: success}\n",
        {"message": "disk full"},
    )
    assert result.status == "failed"
    attempt = step(runlog(workdir, result.run_id), "a").attempts[0]
    assert attempt.status == "failed" and attempt.error == "RuntimeError: disk full"
    log_text = Path(attempt.log).read_text()
    assert "Traceback" in log_text and "ctasks.py" in log_text and "disk full" in log_text


def test_missing_parameter_is_a_clear_step_error(workdir: Path) -> None:
    result = run_yaml(workdir, CHAIN, {"a": 1})
    attempt = step(runlog(workdir, result.run_id), "first").attempts[0]
    assert result.status == "failed"
    assert "needs parameter 'b', which is not set" in attempt.error


def test_casting_to_annotations_and_pydantic_models(workdir: Path) -> None:
    result = run_yaml(
        workdir,
        "dag:\n  start_at: a\n  steps:\n    a: {command: ctasks.use_settings, returns: [r], next: success}\n",
        {"settings": {"name": "x", "size": "4"}, "factor": "2.5"},
    )
    assert result.ok and result.parameters["r"] == 10.0


def test_bad_cast_fails_the_step(workdir: Path) -> None:
    result = run_yaml(workdir, CHAIN, {"a": "one", "b": 2})
    attempt = step(runlog(workdir, result.run_id), "first").attempts[0]
    assert "parameter 'a' = 'one' cannot be cast" in attempt.error


def test_multiple_returns_map_in_order(workdir: Path) -> None:
    result = run_yaml(
        workdir,
        "dag:\n  start_at: a\n  steps:\n    a: {command: ctasks.two_values, returns: [n, s], next: success}\n",
    )
    assert result.parameters["n"] == 1 and result.parameters["s"] == "one"


def test_object_returns_are_pickled_through_the_catalog(workdir: Path) -> None:
    result = run_yaml(
        workdir,
        """dag:
  start_at: make
  steps:
    make: {command: ctasks.make_box, returns: [{name: box, kind: object}], next: open}
    open: {command: ctasks.open_box, returns: [v], next: success}
""",
        {"value": 42},
    )
    assert result.ok and result.parameters["v"] == 42
    ref = step(runlog(workdir, result.run_id), "make").attempts[0].returns["box"]
    assert ref["$object"].endswith("box.pickle") and len(ref["sha256"]) == 64
    assert Path(ref["$object"].removeprefix("file://")).exists()


PARALLEL = """
dag:
  start_at: both
  steps:
    both:
      type: parallel
      branches:
        left: {start_at: w, steps: {w: {command: ctasks.sleep_for, returns: [l], next: success}}}
        right: {start_at: w, steps: {w: {command: ctasks.sleep_for, returns: [r], next: success}}}
        third: {start_at: w, steps: {w: {command: ctasks.sleep_for, returns: [t], next: success}}}
      next: success
"""


def test_parallel_branches_run_concurrently(workdir: Path) -> None:
    started = time.perf_counter()
    result = run_yaml(workdir, PARALLEL, {"seconds": 0.5})
    took = time.perf_counter() - started
    assert result.ok and result.parameters["l"] == result.parameters["t"] == "slept"
    assert took < 1.2, f"three 0.5 s branches took {took:.2f}s: not concurrent"
    log = runlog(workdir, result.run_id)
    starts = [step(log, "both", b, "w").attempts[0].start for b in ("left", "right", "third")]
    ends = [step(log, "both", b, "w").attempts[0].end for b in ("left", "right", "third")]
    assert max(starts) < min(ends)  # all three were running at once


def test_failed_branch_fails_parent_unless_handled(workdir: Path) -> None:
    text = """
dag:
  start_at: both
  steps:
    both:
      type: parallel
      branches:
        ok: {start_at: w, steps: {w: {command: ctasks.noop, next: success}}}
        bad: {start_at: w, steps: {w: {command: ctasks.fail_always, next: success}}}
      next: success
    handler: {command: ctasks.record, returns: [noted], next: success}
"""
    failed = run_yaml(workdir, variant(text, lambda d: steps_of(d).pop("handler")))
    assert failed.status == "failed"
    assert step(runlog(workdir, failed.run_id), "both").status == "failed"
    handled = run_yaml(
        workdir,
        variant(text, lambda d: steps_of(d)["both"].update(on_failure="handler")),
        {"counter": str(workdir / "c"), "tag": "t"},
    )
    assert handled.ok and handled.parameters["noted"] == "t"


MAP = """
dag:
  start_at: fan
  steps:
    fan:
      type: map
      iterate_on: xs
      iterate_as: x
      branch:
        start_at: t
        steps:
          t: {command: ctasks.tracked, returns: [y], next: success}
      next: peak
    peak: {command: ctasks.report_peak, returns: [peak], next: success}
"""


@pytest.mark.parametrize("limit", [1, 3])
def test_map_honours_max_parallelism_and_keeps_item_order(workdir: Path, limit: int) -> None:
    items = list(range(12))[::-1]
    limited = variant(MAP, lambda d: steps_of(d)["fan"].update(max_parallelism=limit))
    result = run_yaml(workdir, limited, {"xs": items})
    assert result.ok
    assert result.parameters["y"] == items  # reduced in item order, not completion order
    assert result.parameters["peak"] == limit


def test_map_items_are_scoped_and_recorded(workdir: Path) -> None:
    result = run_yaml(workdir, MAP, {"xs": [5, 6]})
    log = runlog(workdir, result.run_id)
    assert step(log, "fan", "1", "t").attempts[0].returns == {"y": 6}
    assert step(log, "fan").info == {"items": 2, "failed": 0, "returns": {"y": [5, 6]}}
    assert "x" not in result.parameters  # iterate_as lives only inside the iteration


def test_map_reducer(workdir: Path) -> None:
    text = variant(MAP, lambda d: steps_of(d)["fan"].update(reducer="ctasks.concat"))
    result = run_yaml(workdir, text, {"xs": [3, 1, 2]})
    assert result.parameters["y"] == "3,1,2"


def test_map_item_failure_fails_map(workdir: Path) -> None:
    text = """
dag:
  start_at: fan
  steps:
    fan:
      type: map
      iterate_on: xs
      iterate_as: x
      branch: {start_at: t, steps: {t: {command: ctasks.fail_if, returns: [y], next: success}}}
      next: success
"""
    result = run_yaml(workdir, text, {"xs": [1, 2, 3], "bad": 2})
    assert result.status == "failed"
    log = runlog(workdir, result.run_id)
    assert step(log, "fan").info["failed"] == 1
    assert step(log, "fan", "1", "t").attempts[0].error == "ValueError: item 2 is bad"
    assert step(log, "fan", "2", "t").status == "succeeded"


def test_map_on_non_list_fails_with_message(workdir: Path) -> None:
    result = run_yaml(workdir, MAP, {"xs": 5})
    info = step(runlog(workdir, result.run_id), "fan").info
    assert result.status == "failed" and "must be a list; found int" in info["error"]


COND = """
dag:
  start_at: route
  steps:
    route:
      type: conditional
      parameter: mode
      branches:
        "true": {start_at: t, steps: {t: {command: ctasks.square, returns: [out], next: success}}}
        fast: {start_at: t, steps: {t: {command: ctasks.add, returns: [out], next: success}}}
      next: success
"""


@pytest.mark.parametrize(("mode", "out"), [("fast", 5), (True, 4)])
def test_conditional_runs_matching_branch(workdir: Path, mode: object, out: int) -> None:
    result = run_yaml(workdir, COND, {"mode": mode, "x": 2, "a": 2, "b": 3})
    assert result.ok and result.parameters["out"] == out


def test_conditional_without_match_fails(workdir: Path) -> None:
    result = run_yaml(workdir, COND, {"mode": "slow"})
    info = step(runlog(workdir, result.run_id), "route").info
    assert result.status == "failed"
    assert info["error"] == "parameter 'mode' = 'slow' matches no branch (branches: fast, true)"


def test_retry_attempts_are_recorded(workdir: Path) -> None:
    text = """
dag:
  start_at: f
  steps:
    f: {command: ctasks.flaky, returns: [r], retry: {attempts: 3, backoff_seconds: 0.01}, next: success}
"""
    result = run_yaml(workdir, text, {"counter": str(workdir / "calls"), "fail_times": 2})
    assert result.ok
    attempts = step(runlog(workdir, result.run_id), "f").attempts
    assert [a.status for a in attempts] == ["failed", "failed", "succeeded"]
    assert attempts[0].error == "ValueError: flaky failure 1"


@pytest.mark.parametrize("isolation", ["thread", "process", "pool"])
def test_timeout(workdir: Path, isolation: str) -> None:
    text = "dag:\n  start_at: s\n  steps:\n    s: {command: ctasks.sleep_for, timeout_seconds: 0.3, next: success}\n"
    started = time.perf_counter()
    result = run_yaml(workdir, text, {"seconds": 3}, config=file_config(workdir, isolation=isolation))
    assert time.perf_counter() - started < 2.5
    attempt = step(runlog(workdir, result.run_id), "s").attempts[0]
    assert result.status == "failed" and attempt.error == "timed out after 0.3s"


def test_shell_timeout_kills_the_command(workdir: Path) -> None:
    text = "dag:\n  start_at: s\n  steps:\n    s: {command_type: shell, command: sleep 5, timeout_seconds: 0.3, next: success}\n"
    started = time.perf_counter()
    result = run_yaml(workdir, text)
    assert result.status == "failed" and time.perf_counter() - started < 2.5


def test_process_isolation_runs_in_child_process(workdir: Path) -> None:
    import os

    text = """
dag:
  start_at: p
  steps:
    p: {command: ctasks.pid, returns: [pid], next: s}
    s: {command: ctasks.shout, returns: [loud], next: success}
"""
    result = run_yaml(workdir, text, {"word": "hi"}, config=file_config(workdir, isolation="process"))
    assert result.ok and result.parameters["pid"] != os.getpid() and result.parameters["loud"] == "HI"
    log = Path(step(runlog(workdir, result.run_id), "s").attempts[0].log).read_text()
    assert "stdout says hi" in log and "stderr says hi" in log


def test_output_is_captured_per_attempt_and_streamed(
    workdir: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    text = """
dag:
  start_at: both
  steps:
    both:
      type: parallel
      branches:
        a: {start_at: s, steps: {s: {command: ctasks.shout, returns: [x], next: success}}}
        b: {start_at: s, steps: {s: {command_type: shell, command: 'echo shell says $word', next: success}}}
      next: success
"""
    result = run_yaml(workdir, text, {"word": "hey"})
    log = runlog(workdir, result.run_id)
    python_log = Path(step(log, "both", "a", "s").attempts[0].log).read_text()
    shell_log = Path(step(log, "both", "b", "s").attempts[0].log).read_text()
    assert "stdout says hey" in python_log and "stderr says hey" in python_log
    assert "shell says" not in python_log
    assert shell_log == "shell says hey\n"
    out = capfd.readouterr().out
    assert "stdout says hey" in out and "shell says hey" in out
