"""Shared fixtures. Tests that need a real service (PostgreSQL, S3, Dask) call
``need_service``: in CI (CI=true) a missing service fails the test; elsewhere it skips with
the reason, tagged so that .ci/run can refuse a run where such tests were skipped."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PIPELINES = Path(__file__).resolve().parent / "pipelines"
SERVICE_MARKERS = ("postgres", "s3", "dask")


def need_service(kind: str, reason: str) -> None:
    message = f"[needs-service:{kind}] {reason}"
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(message)
    pytest.skip(message)


_skipped_services: list[str] = []


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the real user's profiles or server data."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    for name in ("CONVEYOR_PROFILE", "CONVEYOR_ENDPOINT", "CONVEYOR_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and any(m in report.keywords for m in SERVICE_MARKERS):
        _skipped_services.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _skipped_services and os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        print("\nservice tests were skipped in CI: " + ", ".join(_skipped_services))
        session.exitstatus = 1


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the real ``conveyor`` command in a fresh process."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    full_env.setdefault("COLUMNS", "200")
    return subprocess.run(
        [sys.executable, "-m", "conveyor.cli", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL cluster for the whole session, started by the tests."""
    from services import Postgres

    pg = Postgres()
    try:
        url = pg.start()
    except Exception as exc:  # a missing or broken PostgreSQL: fail in CI, skip elsewhere
        need_service("postgres", f"PostgreSQL could not start: {exc}")
    yield url
    pg.stop()


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh working directory with the test task modules importable."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(PIPELINES))
    return tmp_path


@pytest.fixture
def file_config(tmp_path: Path) -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(
        "run_log_store: {{type: file, config: {{path: {}}}}}\n"
        "catalog: {{type: file, config: {{location: {}}}}}\n".format(tmp_path / "runs", tmp_path / "catalog")
    )
    return config
