"""The shipped top-level help is what the CLI renders, and it is served without the CLI."""

from __future__ import annotations

import os
import subprocess
import sys

from conveyor.cli import HELP_FILE

RENDER = "import sys; sys.argv = ['conveyor', '--help']; from conveyor.cli.main import run; run()"


def test_shipped_help_is_what_the_cli_renders() -> None:
    env = dict(os.environ, COLUMNS="80")
    rendered = subprocess.run([sys.executable, "-c", RENDER], capture_output=True, text=True, env=env)
    assert rendered.returncode == 0
    assert HELP_FILE.read_text() == rendered.stdout, (
        'regenerate with: COLUMNS=80 python -c "' + RENDER + '" > src/conveyor/cli/help.txt'
    )


def test_help_and_no_arguments_answer_like_the_cli_without_importing_it() -> None:
    code = "import sys; from conveyor.cli import main\ntry:\n    main()\nfinally:\n    print('typer' in sys.modules, file=sys.stderr)"
    env = dict(os.environ, COLUMNS="120")
    asked = subprocess.run([sys.executable, "-c", code, "--help"], capture_output=True, text=True, env=env)
    assert asked.returncode == 0 and asked.stdout == HELP_FILE.read_text()
    assert asked.stderr.strip() == "False"
    bare = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert bare.returncode == 2 and bare.stdout == "" and bare.stderr.startswith(HELP_FILE.read_text())


def test_a_narrow_terminal_gets_the_cli_rendering() -> None:
    code = "import sys; from conveyor.cli import main\ntry:\n    main()\nfinally:\n    print('typer' in sys.modules, file=sys.stderr)"
    narrow = subprocess.run(
        [sys.executable, "-c", code, "--help"],
        capture_output=True,
        text=True,
        env=dict(os.environ, COLUMNS="60"),
    )
    assert narrow.returncode == 0 and narrow.stderr.strip() == "True" and "Commands:" in narrow.stdout
