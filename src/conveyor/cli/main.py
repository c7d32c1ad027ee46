"""The ``conveyor`` command's entry point, :func:`run`, and its error handling.

The CLI framework is a fixed cost of every command: importing Typer and building a validator
per option on every call. ``conveyor execute`` runs pipelines, often many times a minute from
scripts, every Argo pod runs ``conveyor execute-single-node`` and CI runs ``conveyor
validate``, so a plain command line of these (the documented arguments and options, each
spelled as the help shows it) is parsed by :mod:`conveyor.cli.quick` without Typer. Every
other command line (help, any other command, a mistake, an unusual spelling) goes to the
Typer tree in :mod:`conveyor.cli.app`, which says exactly what it always said: the quick
parser only ever accepts a command line that Typer would accept with the same meaning.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conveyor.cli.quick import Quick


def run() -> None:
    """The ``conveyor`` command: errors a user can act on are one message and their exit
    code; anything else is a bug, said in one line with a crash report kept on disk."""
    from conveyor.cli.quick import parse
    from conveyor.errors import ConveyorError

    try:
        quick = parse(sys.argv[1:])
        if quick is not None:
            raise SystemExit(_quickly(quick))
        from conveyor.cli.app import app

        app()
    except ConveyorError as exc:
        from conveyor.cli.errors import fail

        raise SystemExit(fail(exc)) from None
    except Exception as exc:
        from conveyor.cli.errors import unexpected

        raise SystemExit(unexpected(exc)) from None


def _quickly(quick: Quick) -> int:
    """A command the quick parser read, ended as the Typer tree ends a command: Ctrl-C is
    exit 130, end of input "Aborted!" and exit 1, a closed pipe exit 1 without a traceback."""
    import errno

    from conveyor.cli.startup import command_process

    try:
        with command_process():  # the command's own process: its start-up may be frozen
            return quick.run()
    except KeyboardInterrupt:
        return 130
    except EOFError:
        print(file=sys.stderr)
        print("Aborted!", file=sys.stderr)
        return 1
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            raise
        _quiet_streams()
        return 1


def _quiet_streams() -> None:
    """After a closed pipe: stdout and stderr that drop what is still written to them, so the
    interpreter's final flush does not fail too."""
    import os

    devnull = open(os.devnull, "w")  # noqa: SIM115 - lives until the process ends
    sys.stdout = devnull
    sys.stderr = devnull


def __getattr__(name: str) -> Any:
    """``app``, the Typer tree, imported when first asked for (by the docs' reference, the
    tests), not by every ``conveyor`` command."""
    if name == "app":
        from conveyor.cli.app import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":
    run()
