"""Shared fixtures. Tests that need a real service (PostgreSQL, S3, Dask) call
``need_service``: in CI (CI=true) a missing service fails the test; elsewhere it skips with
the reason, tagged so that .ci/run can refuse a run where such tests were skipped."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support import TASKS, in_ci, need_service

SERVICE_MARKERS = ("postgres", "s3", "dask", "sandbox", "browser", "argoreal", "powercut")

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
    if _skipped_services and in_ci():
        print("\nservice tests were skipped in CI: " + ", ".join(_skipped_services))
        session.exitstatus = 1


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL cluster for the whole session, started by the tests."""
    from support.services import Postgres

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
    monkeypatch.syspath_prepend(str(TASKS))
    return tmp_path


@pytest.fixture
def file_config(tmp_path: Path) -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(
        "run_log_store: {{type: file, config: {{path: {}}}}}\n"
        "catalog: {{type: file, config: {{location: {}}}}}\n".format(tmp_path / "runs", tmp_path / "catalog")
    )
    return config
