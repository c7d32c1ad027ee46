"""Test helpers, importable as ``support``: running the CLI, real services, run helpers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import conveyor

ROOT = Path(__file__).resolve().parents[2]
#: Importable task functions used by the test pipelines (on the tests' Python path).
TASKS = ROOT / "tests" / "tasks"
#: Real pipeline files, named by shape.
PIPELINES = ROOT / "tests" / "pipelines"
#: Where the conveyor under test lives, as a traceback may spell it (symlinks resolved or not).
PACKAGE_DIRS = {str(Path(conveyor.__file__).parent.absolute()), str(Path(conveyor.__file__).parent.resolve())}


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def need_service(kind: str, reason: str) -> None:
    """A real service is missing: fail in CI (CI=true), skip with the reason elsewhere."""
    message = f"[needs-service:{kind}] {reason}"
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the real ``conveyor`` command in a fresh process. Whatever the test expects, a
    traceback through conveyor's own code fails it: users get messages, not tracebacks."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    full_env.setdefault("COLUMNS", "200")
    done = subprocess.run(
        [sys.executable, "-m", "conveyor.cli", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert not conveyor_traceback(done.stdout + done.stderr), f"conveyor {' '.join(args)}:\n{done.stderr}"
    return done


def conveyor_traceback(text: str) -> bool:
    """Whether ``text`` holds a traceback through conveyor's code (a step's own traceback,
    which conveyor shows in the step's log, starts below conveyor's frames)."""
    if "Traceback (most recent call last)" not in text:
        return False
    # The package's own folder, not any path with a "conveyor" part in it: a clone of the
    # repository is itself called conveyor, and its tests' step modules live under it.
    frames = [line.strip() for line in text.splitlines() if line.strip().startswith("File ")]
    return any(f'"{package}{os.sep}' in frame for frame in frames for package in PACKAGE_DIRS)
