"""The CLI as a server client: profiles, submit, runs commands; database errors on start."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from support import ROOT, TASKS, need_service, run_cli
from support.services import Postgres, Server


def test_profiles(tmp_path: Path) -> None:
    add = run_cli(
        "profile",
        "add",
        "prod",
        "--endpoint",
        "https://conveyor.example:8400",
        "--token",
        "cvt_abcdefghijklmnop",
        cwd=tmp_path,
    )
    assert add.returncode == 0, add.stderr
    run_cli("profile", "add", "dev", "--endpoint", "http://127.0.0.1:9", cwd=tmp_path)
    path = Path(os.environ["XDG_CONFIG_HOME"]) / "conveyor" / "profiles.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    listed = run_cli("profile", "list", cwd=tmp_path)
    assert "│ * │ prod" in listed.stdout and "dev" in listed.stdout
    shown = run_cli("profile", "show", cwd=tmp_path)
    assert "cvt_ab…mnop" in shown.stdout and "abcdefghijklmnop" not in shown.stdout
    assert run_cli("profile", "use", "dev", cwd=tmp_path).returncode == 0
    assert json.loads(path.read_text())["current"] == "dev"
    env = run_cli(
        "profile",
        "show",
        cwd=tmp_path,
        env={"CONVEYOR_PROFILE": "prod", "CONVEYOR_TOKEN": "cvt_override_token_1"},
    )
    assert "conveyor.example" in env.stdout and "cvt_ov…en_1" in env.stdout
    endpoint = run_cli("profile", "show", cwd=tmp_path, env={"CONVEYOR_ENDPOINT": "http://10.0.0.1:1"})
    assert "http://10.0.0.1:1" in endpoint.stdout
    assert run_cli("profile", "remove", "dev", cwd=tmp_path).returncode == 0
    assert json.loads(path.read_text())["current"] == "prod"
    bad = run_cli("profile", "use", "nope", cwd=tmp_path)
    assert bad.returncode == 2 and "no profile 'nope'" in bad.stderr
    bad = run_cli("profile", "add", "x", "--endpoint", "ftp://x", cwd=tmp_path)
    assert bad.returncode == 2 and "http://" in bad.stderr


def test_cli_against_a_server(tmp_path: Path) -> None:
    server = Server(f"sqlite:///{tmp_path / 'server.db'}", tmp_path).start()
    try:
        env = {"CONVEYOR_ENDPOINT": server.endpoint, "CONVEYOR_TOKEN": server.tokens["ann"]}
        (tmp_path / "params.yaml").write_text("a: 2\nb: 3\n")
        (tmp_path / "pipeline.yaml").write_text(
            "dag:\n  start_at: add\n  steps:\n    add: {command: ctasks.add, returns: [c], next: success}\n"
        )
        submitted = run_cli(
            "submit",
            "-f",
            "pipeline.yaml",
            "-p",
            "params.yaml",
            "--code",
            str(TASKS),
            "--run-id",
            "cli-run",
            "--wait",
            cwd=tmp_path,
            env=env,
        )
        assert submitted.returncode == 0, submitted.stdout + submitted.stderr
        assert "submitted run cli-run" in submitted.stdout and "succeeded" in submitted.stdout
        listed = run_cli("runs", "list", cwd=tmp_path, env=env)
        assert "cli-run" in listed.stdout and "ann" in listed.stdout
        status = run_cli("runs", "status", "cli-run", cwd=tmp_path, env=env)
        assert status.returncode == 0 and "succeeded" in status.stdout and "add" in status.stdout
        shown = run_cli("runs", "show", "cli-run", cwd=tmp_path, env=env)  # the server's, not a local log
        assert shown.returncode == 0 and "succeeded" in shown.stdout and "add" in shown.stdout, shown.stderr
        bad = run_cli("submit", "-f", str(ROOT / "tests/server/conftest.py"), cwd=tmp_path, env=env)
        assert bad.returncode == 2 and "422" in bad.stderr
        other = run_cli(
            "runs", "status", "cli-run", cwd=tmp_path, env={**env, "CONVEYOR_TOKEN": server.tokens["bob"]}
        )
        assert other.returncode == 2 and "404" in other.stderr
    finally:
        server.stop()


def test_unreachable_database_is_reported(tmp_path: Path) -> None:
    url = "postgresql+psycopg://postgres@127.0.0.1:1/none"
    started = run_cli("server", "start", "--db", url, "--port", "1", cwd=tmp_path)
    assert started.returncode == 2 and "cannot reach the database 127.0.0.1:1/none" in started.stderr
    assert "Traceback" not in started.stderr


@pytest.mark.postgres
def test_health_says_when_the_database_is_gone(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from conveyor.server.api import create_app
    from conveyor.server.db import migrate

    pg = Postgres()
    try:
        url = pg.start()
    except Exception as exc:
        need_service("postgres", f"PostgreSQL could not start: {exc}")
    try:
        migrate(url)
        client = TestClient(create_app(url))
        assert client.get("/api/v1/health").json() == {"status": "ok", "database": "ok", "workers": None}
    finally:
        pg.stop()
    broken = client.get("/api/v1/health")
    assert broken.status_code == 503 and broken.json()["database"].startswith("unreachable")
    assert "Traceback" not in broken.text
