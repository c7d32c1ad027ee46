"""Validation reports every problem together, located, with what was expected and found."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.spec.errors import SpecError
from conveyor.spec.load import load_config, load_pipeline


def problems(tmp_path: Path, text: str) -> SpecError:
    path = tmp_path / "pipeline.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        load_pipeline(path)
    return info.value


def test_every_problem_is_reported_together_with_lines(tmp_path: Path) -> None:
    error = problems(
        tmp_path,
        """dag:
  start_at: load
  steps:
    load:
      comand: pkg.load
      next: proces
    process:
      type: tsk
      next: success
""",
    )
    rendered = str(error)
    assert "5 problems" in rendered  # the unreachable "process" is the fifth
    by_message = {i.message: i for i in error.issues}
    unknown = by_message["unknown key 'comand'"]
    assert unknown.line == 5 and unknown.hint == "did you mean 'command'?"
    assert unknown.path == ("dag", "steps", "load", "comand")
    assert by_message["missing key 'command'"].line == 4
    link = by_message["next names an unknown step 'proces'"]
    assert link.line == 6 and link.hint == "did you mean 'process'?"
    kind = by_message["unknown step type 'tsk'"]
    assert kind.line == 8 and kind.hint == "did you mean 'task'?"
    assert "pipeline.yaml:5: dag.steps.load.comand: unknown key 'comand'" in rendered


def test_unknown_start_at_and_unreachable_step(tmp_path: Path) -> None:
    error = problems(
        tmp_path,
        """dag:
  start_at: frist
  steps:
    first: {command: a.b, next: success}
    orphan: {command: a.c, next: success}
""",
    )
    messages = [i.message for i in error.issues]
    assert "start_at names an unknown step 'frist'" in messages
    start = next(i for i in error.issues if i.path[-1] == "start_at")
    assert start.hint == "did you mean 'first'?" and start.line == 2


def test_unreachable_step_is_reported(tmp_path: Path) -> None:
    error = problems(
        tmp_path,
        """dag:
  start_at: first
  steps:
    first: {command: a.b, next: success}
    orphan: {command: a.c, next: success}
""",
    )
    (issue,) = error.issues
    assert issue.message == "step 'orphan' is unreachable" and issue.line == 5


def test_loop_in_next_chain(tmp_path: Path) -> None:
    error = problems(
        tmp_path,
        """dag:
  start_at: a
  steps:
    a: {command: m.a, next: b}
    b: {command: m.b, next: c}
    c: {command: m.c, next: a}
""",
    )
    (issue,) = error.issues
    assert issue.message == "the steps form a loop: a -> b -> c -> a"
    assert issue.line == 6


def test_wrong_types_and_values(tmp_path: Path) -> None:
    error = problems(
        tmp_path,
        """dag:
  start_at: a
  steps:
    a:
      command: m.a
      retry: {attempts: zero}
      timeout_seconds: -1
      command_type: pyhton
      returns: [{name: 1bad}]
      next: success
""",
    )
    by_path = {i.path[-1]: i for i in error.issues}
    assert by_path["attempts"].found == "'zero' (string)"
    assert by_path["timeout_seconds"].expected == "greater than 0"
    assert by_path["command_type"].hint == "did you mean 'python'?"
    assert by_path["name"].message == "not a valid name"


def test_duplicate_keys_are_errors(tmp_path: Path) -> None:
    error = problems(
        tmp_path,
        """dag:
  start_at: a
  steps:
    a: {command: m.a, next: success}
    a: {command: m.b, next: success}
""",
    )
    (issue,) = error.issues
    assert issue.message == "duplicate key 'a'" and issue.line == 5
    assert "first on line 4" in (issue.found or "")


def test_catalog_patterns_may_not_escape(tmp_path: Path) -> None:
    error = problems(
        tmp_path,
        """dag:
  start_at: a
  steps:
    a:
      command: m.a
      catalog: {get: ["../secret.txt"], put: ["/etc/passwd", "ok/*.csv"]}
      next: success
""",
    )
    assert [i.message for i in error.issues] == ["catalog pattern escapes the working directory"] * 2


def test_python_command_must_be_dotted(tmp_path: Path) -> None:
    error = problems(tmp_path, "dag:\n  start_at: a\n  steps:\n    a: {command: load, next: success}\n")
    assert error.issues[0].message == "a python command must be a dotted path to a function"


def test_nested_branches_are_checked(tmp_path: Path) -> None:
    error = problems(
        tmp_path,
        """dag:
  start_at: fan
  steps:
    fan:
      type: map
      iterate_on: xs
      iterate_as: x
      branch:
        start_at: one
        steps:
          one: {command: m.one, next: tow}
          two: {command: m.two, next: success}
      next: success
""",
    )
    paths = {i.path for i in error.issues}
    assert ("dag", "steps", "fan", "branch", "steps", "one", "next") in paths
    assert ("dag", "steps", "fan", "branch", "steps", "two") in paths  # unreachable


def test_anchors_reuse_branches(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        """common: &branch
  start_at: work
  steps:
    work: {command: m.work, next: success}
dag:
  start_at: both
  steps:
    both:
      type: parallel
      branches: {left: *branch, right: *branch}
      next: success
"""
    )
    # `common` carries an anchor: a definition reused below (runnable's examples do this).
    loaded = load_pipeline(path)
    assert set(loaded.pipeline.dag.steps["both"].branches) == {"left", "right"}  # type: ignore[attr-defined]
    assert "common" not in loaded.data
    # A top-level key without an anchor is still an error, with a suggestion.
    path.write_text(
        """dgx: 1
dag:
  start_at: w
  steps:
    w: {command: m.w, next: success}
"""
    )
    with pytest.raises(SpecError) as info:
        load_pipeline(path)
    assert [i.message for i in info.value.issues] == ["unknown key 'dgx'"]
    assert "dag" in (info.value.issues[0].hint or "")
    path.write_text(
        """dag:
  start_at: both
  steps:
    both:
      type: parallel
      branches:
        left: &branch
          start_at: work
          steps:
            work: {command: m.work, next: success}
        right: *branch
      next: success
"""
    )
    loaded = load_pipeline(path)
    both = loaded.pipeline.dag.steps["both"]
    assert set(both.branches) == {"left", "right"}  # type: ignore[union-attr]


def test_merge_keys(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        """dag:
  start_at: a
  steps:
    a: &base {command: m.a, retry: {attempts: 3}, next: b}
    b:
      <<: *base
      command: m.b
      next: success
"""
    )
    steps = load_pipeline(path).pipeline.dag.steps
    assert steps["b"].command == "m.b" and steps["b"].retry.attempts == 3  # type: ignore[union-attr]


def test_alias_bomb_is_refused(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for i in range(1, 10):
        refs = ", ".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    error = problems(tmp_path, "\n".join(lines) + "\n")
    assert error.issues[0].found == "an alias expansion bomb"


def test_oversized_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("# " + "x" * (9 * 1024 * 1024))
    with pytest.raises(SpecError) as info:
        load_pipeline(path)
    assert info.value.issues[0].message == "the file is too large"


def test_yaml_syntax_error_has_line(tmp_path: Path) -> None:
    error = problems(tmp_path, "dag:\n  start_at: a\n  steps: [\n")
    assert error.issues[0].message.startswith("not valid YAML") and error.issues[0].line is not None


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_pipeline(tmp_path / "nope.yaml")
    assert info.value.issues[0].message == "file not found"


def test_config_unknown_keys_and_seed_spellings(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("pipeline-executor: {type: local}\nrun-log-store: {type: file}\n")
    config = load_config(path)
    assert config.executor.type == "local" and config.run_log_store.type == "file"
    path.write_text("executor: {type: local}\nrunlog: {type: file}\n")
    with pytest.raises(SpecError) as info:
        load_config(path)
    (issue,) = info.value.issues
    assert issue.message == "unknown key 'runlog'" and issue.line == 2
    assert issue.hint == "did you mean 'run_log_store'?"
