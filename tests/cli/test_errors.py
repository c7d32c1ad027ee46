"""Errors a user can act on are one message and their exit code; a bug is one line, a crash
report file and exit code 70, never a traceback on the terminal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import conveyor
from conveyor.errors import ConveyorError
from support import conveyor_traceback

BOOM = """
import sys
from conveyor.cli import commands, main

def boom(*args, **kwargs):
    raise RuntimeError("an unexpected state")

commands.validate = boom
sys.argv = ["conveyor", "validate", "-f", "x.yaml"]
main()
"""


def test_an_unexpected_exception_is_one_line_and_a_crash_report(tmp_path: Path) -> None:
    env = dict(os.environ, CONVEYOR_CRASH_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", BOOM], capture_output=True, text=True, env=env)
    assert out.returncode == 70
    assert not conveyor_traceback(out.stderr) and "Traceback" not in out.stderr
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith("conveyor: internal error (RuntimeError: an unexpected state)")
    (report,) = tmp_path.glob("conveyor-crash-*.txt")
    assert str(report) in line
    assert "Traceback (most recent call last)" in report.read_text() and "boom" in report.read_text()


def test_user_errors_show_their_hint_and_exit_code() -> None:
    class Refused(ConveyorError):
        exit_code = 3
        hint = "try again later"

    assert Refused("not now").show() == "conveyor: not now; try again later"
    assert Refused("x").exit_code == 3


def test_the_traceback_detector_tells_conveyor_frames_from_a_steps_own() -> None:
    own = 'Traceback (most recent call last):\n  File "/work/tasks.py", line 3, in f\nValueError: x'
    # A clone of the repository is called conveyor: its tests' step modules are not conveyor's code.
    in_a_clone = 'Traceback (most recent call last):\n  File "/home/me/conveyor/tests/tasks/ctasks.py", line 3\nValueError'
    main = Path(conveyor.__file__).parent / "cli" / "main.py"
    ours = f'Traceback (most recent call last):\n  File "{main}", line 1, in run\nKeyError'
    assert not conveyor_traceback(own) and not conveyor_traceback(in_a_clone) and conveyor_traceback(ours)
