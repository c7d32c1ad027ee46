"""Ordinary bad input is a located message and exit 2: run ids, ports, server URLs and
profiles, database URLs, mocked-executor patches; and a crash report is never lost."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from support import run_cli

PIPELINE = """
dag:
  start_at: a
  steps:
    a: {type: task, command_type: shell, command: "echo hi", next: success}
"""
LOCAL = "run_log_store: {type: file, config: {path: runs}}\n"


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "pipeline.yaml").write_text(PIPELINE)
    (tmp_path / "config.yaml").write_text(LOCAL)
    return tmp_path


@pytest.mark.parametrize(
    "args",
    [
        ["runs", "show", "", "-c", "config.yaml"],
        ["runs", "logs", "", "-c", "config.yaml"],
        ["retry", "", "-c", "config.yaml"],
        ["execute-single-node", "../x", "a", "-f", "pipeline.yaml", "-c", "config.yaml"],
        ["run-start", "..", "-c", "config.yaml"],
        ["execute", "-f", "pipeline.yaml", "--run-id", "/etc/passwd"],
    ],
    ids=["runs-show", "runs-logs", "retry", "execute-single-node", "run-start", "execute"],
)
def test_a_bad_run_id_is_a_usage_error(work: Path, args: list[str]) -> None:
    out = run_cli(*args, cwd=work)
    assert out.returncode == 2, out.stderr
    assert "run_id" in out.stderr or "--run-id" in out.stderr  # where
    assert "expected a run id: letters, digits" in out.stderr  # what was expected
    assert "found '" in out.stderr and "internal error" not in out.stderr  # what was found


@pytest.mark.parametrize("command", [["ui"], ["server", "start"]])
@pytest.mark.parametrize("port", ["0", "-1", "65536", "99999"])
def test_ports_are_checked_before_anything_listens(work: Path, command: list[str], port: str) -> None:
    out = run_cli(*command, f"--port={port}", cwd=work, timeout=60)
    assert out.returncode == 2, out.stderr
    assert "Invalid value for '--port': expected a port from 1 to 65535, found" in out.stderr


@pytest.mark.parametrize("command", [["ui"], ["server", "start"]])
@pytest.mark.parametrize("host", ["", "bogus..host", "http://[::1", "999.1.1.1"])
def test_hosts_are_checked_before_anything_listens(work: Path, command: list[str], host: str) -> None:
    out = run_cli(*command, f"--host={host}", cwd=work, timeout=60)
    assert out.returncode == 2, out.stderr
    assert "Invalid value for '--host': expected an IP address or a host name" in out.stderr
    assert f"found {host!r}" in out.stderr


@pytest.mark.parametrize(("option", "low"), [("--workers=-1", "0"), ("--api-workers=0", "1")])
def test_server_worker_counts_are_checked_before_anything_listens(work: Path, option: str, low: str) -> None:
    out = run_cli("server", "start", option, cwd=work, timeout=60)
    assert out.returncode == 2 and f"expected a number, {low} or more" in out.stderr, out.stderr


@pytest.mark.parametrize("command", [["ui"], ["server", "start"]])
def test_a_port_in_use_is_a_message_before_anything_starts(work: Path, command: list[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {"CONVEYOR_SERVER_SANDBOX": "none"}
        out = run_cli(*command, "--port", str(port), cwd=work, env=env, timeout=60)
    assert out.returncode == 2, out.stderr
    assert f"--host 127.0.0.1 --port {port}: cannot listen there (Address already in use)" in out.stderr
    assert "newest schema" not in out.stdout  # refused before the server touched its database


def test_a_profile_endpoint_that_is_not_a_url_is_refused_at_add_time(work: Path) -> None:
    out = run_cli("profile", "add", "a", "--endpoint", "http://[::1", cwd=work)
    assert out.returncode == 2 and "Invalid value for '--endpoint'" in out.stderr
    assert "found 'http://[::1'" in out.stderr
    assert not (Path(os.environ["XDG_CONFIG_HOME"]) / "conveyor" / "profiles.json").exists()
    assert run_cli("runs", "list", cwd=work).returncode == 0  # nothing broken for later commands


def test_a_bad_profile_on_disk_is_a_message_naming_the_file(work: Path) -> None:
    profiles = Path(os.environ["XDG_CONFIG_HOME"]) / "conveyor" / "profiles.json"
    profiles.parent.mkdir(parents=True)
    profiles.write_text(
        json.dumps({"current": "a", "profiles": {"a": {"endpoint": "http://[::1", "token": None}}})
    )
    out = run_cli("runs", "list", cwd=work)
    assert out.returncode == 2, out.stderr
    assert f"profile 'a' in {profiles}" in out.stderr and "found 'http://[::1'" in out.stderr
    assert "conveyor profile add a --endpoint URL" in out.stderr
    env = run_cli("runs", "list", cwd=work, env={"CONVEYOR_ENDPOINT": "http://a b"})
    assert env.returncode == 2 and "CONVEYOR_ENDPOINT: expected an http:// or https:// URL" in env.stderr


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("mysql://x", "a conveyor server keeps its data in SQLite or PostgreSQL"),
        ("postgresql://u:secret@h:abc/x", "invalid literal for int()"),
    ],
)
def test_a_database_url_the_server_cannot_use_is_a_message(work: Path, url: str, problem: str) -> None:
    out = run_cli("server", "migrate", "--db", url, cwd=work)
    assert out.returncode == 2, out.stderr
    assert (
        "--db: expected a database URL, sqlite:///PATH or postgresql" in out.stderr and problem in out.stderr
    )
    assert "secret" not in out.stderr


def test_a_patch_naming_no_task_is_refused_with_did_you_mean(work: Path) -> None:
    (work / "mocked.yaml").write_text(
        "executor:\n  type: mocked\n  config:\n    patches:\n      aa: {command: exit 1}\n      a: {command: exit 1}\n"
    )
    for command in ("execute", "validate"):
        out = run_cli(command, "-f", "pipeline.yaml", "-c", "mocked.yaml", cwd=work)
        assert out.returncode == 2, out.stderr
        assert "mocked.yaml:5: executor.config.patches.aa: the patch 'aa' names no task" in out.stderr
        assert "did you mean 'a'?" in out.stderr and "patches.a:" not in out.stderr


CRASH = """
import sys
from conveyor.cli import commands, main

def boom(*args, **kwargs):
    raise RuntimeError("an unexpected state")

commands.validate = boom
sys.argv = ["conveyor", "validate", "-f", "x.yaml"]
main()
"""


def test_a_crash_report_goes_to_a_crash_dir_that_does_not_exist_yet(tmp_path: Path) -> None:
    where = tmp_path / "not" / "yet"
    env = dict(os.environ, CONVEYOR_CRASH_DIR=str(where))
    out = subprocess.run([sys.executable, "-c", CRASH], capture_output=True, text=True, env=env)
    assert out.returncode == 70
    (report,) = where.glob("conveyor-crash-*.txt")
    assert str(report) in out.stderr and "an unexpected state" in report.read_text()


def test_a_crash_report_falls_back_to_the_temporary_directory(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = dict(os.environ, CONVEYOR_CRASH_DIR=str(blocker / "crash"), TMPDIR=str(temp))
    out = subprocess.run([sys.executable, "-c", CRASH], capture_output=True, text=True, env=env)
    assert out.returncode == 70
    (report,) = temp.glob("conveyor-crash-*.txt")
    assert str(report) in out.stderr
