"""The fork server a server run's engine is started by (``conveyor.step.zygote``): pool
processes forked from it, not started afresh, with what ``isolation: pool`` promises."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from support.runs import file_config, runlog

MAP = """dag:
  start_at: fan
  steps:
    fan:
      type: map
      iterate_on: items
      iterate_as: x
      branch:
        start_at: one
        steps:
          one: {command: pooltasks.crash_on, returns: [pid], next: success}
      next: success
"""
TASKS = str(Path(__file__).resolve().parents[1] / "tasks")


def _run(
    tmp_path: Path, text: str, params: dict[str, object], fds: tuple[int, ...] = (), **executor: object
) -> tuple[int, str]:
    """``python -m conveyor.step.zygote conveyor.cli execute ...``: exit code and run id."""
    (tmp_path / "pipeline.yaml").write_text(text)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    config = file_config(tmp_path, isolation="pool", **executor).model_dump(mode="json")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([TASKS, *sys.path])}
    argv = [sys.executable, "-m", "conveyor.step.zygote", "conveyor.cli", "execute", "-q"]
    argv += ["-f", "pipeline.yaml", "-c", "config.yaml", "-p", "params.yaml", "--run-id", "zygote-run"]
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, timeout=120, pass_fds=fds)
    return done.returncode, "zygote-run"


def test_forked_pool_processes_run_items_and_a_crash_fails_its_item_alone(tmp_path: Path) -> None:
    code, run_id = _run(tmp_path, MAP, {"items": list(range(30)), "bad": 7}, max_workers=2)
    assert code == 1  # the engine's own exit status: the run failed (one item)
    log = runlog(tmp_path, run_id)
    items = {tuple(path): record for path, record in log.steps.items() if path[-1] == "one"}
    failed = [path for path, record in items.items() if record.status != "succeeded"]
    assert failed == [("fan", "7", "one")], failed
    crashed = items["fan", "7", "one"].attempts[-1]
    assert crashed.error == "the step's process died with exit code 3"  # told by the server
    assert "item 7 in" in Path(str(crashed.log)).read_text()
    pids = {record.attempts[-1].returns["pid"] for path, record in items.items() if path[1] != "7"}
    assert 1 <= len(pids) <= 3, pids
    for x in (3, 20):
        text = Path(str(items["fan", str(x), "one"].attempts[-1].log)).read_text()
        assert text.strip() == f"item {x} in {items['fan', str(x), 'one'].attempts[-1].returns['pid']}"


def test_a_forked_pool_process_has_no_descriptor_of_the_engine(tmp_path: Path) -> None:
    """Only its two pipes (and stdin): not the run log's pipes, not the fork server's socket."""
    text = MAP.replace("pooltasks.crash_on", "pooltasks.descriptors").replace("[pid]", "[fds]")
    extra = os.pipe()  # stands for the run log's pipes, which the server's engine inherits
    try:
        code, run_id = _run(tmp_path, text, {"items": [0]}, extra)
    finally:
        os.close(extra[0])
        os.close(extra[1])
    assert code == 0
    fds = runlog(tmp_path, run_id).steps["fan", "0", "one"].attempts[-1].returns["fds"]
    assert fds == [0, 1, 2, fds[3]] and len(fds) == 4, fds  # stdio and its request pipe


def test_a_forked_step_that_overruns_its_timeout_is_killed(tmp_path: Path) -> None:
    """A forked step that overruns its timeout is killed (the server tells how it ended)."""
    text = MAP.replace("pooltasks.crash_on", "pooltasks.nap").replace(
        "returns: [pid],", "returns: [pid], timeout_seconds: 1,"
    )
    code, run_id = _run(tmp_path, text, {"items": [0], "seconds": 30})
    assert code == 1
    attempt = runlog(tmp_path, run_id).steps["fan", "0", "one"].attempts[-1]
    assert attempt.error == "timed out after 1s"


def test_the_server_keeps_no_descriptor_of_the_engine(tmp_path: Path) -> None:
    """The fork server closes what the engine inherits (the run log's pipes, the secrets'
    descriptor) once it has forked it: it holds only its socket to the engine."""
    text = MAP.replace("pooltasks.crash_on", "pooltasks.parent_descriptors").replace("[pid]", "[fds]")
    extra = os.pipe()
    try:
        code, run_id = _run(tmp_path, text, {"items": [0]}, extra)
        inodes = {os.fstat(fd).st_ino for fd in extra}
    finally:
        os.close(extra[0])
        os.close(extra[1])
    assert code == 0
    held = runlog(tmp_path, run_id).steps["fan", "0", "one"].attempts[-1].returns["fds"]
    assert any(link.startswith("socket:") for link in held), held
    assert not [link for link in held if any(f"[{inode}]" in link for inode in inodes)], held


def test_a_descriptor_above_the_soft_limit_is_closed_and_no_step_can_trace_the_server(tmp_path: Path) -> None:
    """Code run before the fork server closes what the engine inherits may move a descriptor
    above the soft limit on descriptors and lower it: the server closes up to the hard limit.
    And the server is not dumpable (what it forks inherits that): a step cannot ptrace it
    or take its descriptors."""
    import resource

    text = MAP.replace("pooltasks.crash_on", "pooltasks.parent_descriptors").replace("[pid]", "[fds]")
    read, write = os.pipe()
    high = 3000
    os.dup2(read, high)
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard <= high:
        raise AssertionError(f"the hard limit on descriptors here ({hard}) is too low for this test")

    def lower() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (2000, hard))

    try:
        inode = os.fstat(high).st_ino
        (tmp_path / "pipeline.yaml").write_text(text)
        (tmp_path / "params.yaml").write_text(yaml.safe_dump({"items": [0]}))
        config = file_config(tmp_path, isolation="pool").model_dump(mode="json")
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([TASKS, *sys.path])}
        argv = [sys.executable, "-m", "conveyor.step.zygote", "conveyor.cli", "execute", "-q"]
        argv += ["-f", "pipeline.yaml", "-c", "config.yaml", "-p", "params.yaml", "--run-id", "high"]
        done = subprocess.run(
            argv, cwd=tmp_path, env=env, capture_output=True, timeout=120, pass_fds=(high,), preexec_fn=lower
        )
    finally:
        for fd in (read, write, high):
            os.close(fd)
    assert done.returncode == 0, done.stderr
    held = runlog(tmp_path, "high").steps["fan", "0", "one"].attempts[-1].returns["fds"]
    assert not [link for link in held if f"[{inode}]" in link], held

    (tmp_path / "d").mkdir()
    code, run_id = _run(
        tmp_path / "d", MAP.replace("pooltasks.crash_on", "pooltasks.dumpable"), {"items": [0]}
    )
    assert code == 0
    assert runlog(tmp_path / "d", run_id).steps["fan", "0", "one"].attempts[-1].returns["pid"] == 0
