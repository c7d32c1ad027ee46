"""The command line. ``main`` is the ``conveyor`` command.

``conveyor`` and ``conveyor --help`` print the top-level help from a file shipped with the
package, without importing the CLI framework: that is most of what a newcomer's first call
costs. ``tests/cli/test_help.py`` keeps the file identical to what the CLI renders.
"""

from __future__ import annotations

import sys
from pathlib import Path

HELP_FILE = Path(__file__).with_name("help.txt")
#: The help is rendered this wide on any terminal at least 80 columns wide (click's default).
HELP_COLUMNS = 80


def main() -> None:
    """The ``conveyor`` command: the shipped help when that is all that is asked, else the CLI."""
    args = sys.argv[1:]
    if args in ([], ["--help"]) and _wide_enough():
        try:
            text = HELP_FILE.read_text(encoding="utf-8")
        except OSError:
            text = ""
        if text:  # as click does: asked for, to stdout (exit 0); for want of a command, stderr (2)
            stream = sys.stdout if args else sys.stderr
            stream.write(text)
            stream.flush()
            raise SystemExit(0 if args else 2)
    from conveyor.cli.main import run

    run()


def _wide_enough() -> bool:
    import shutil

    return shutil.get_terminal_size().columns >= HELP_COLUMNS
