"""Turning known failures into messages and exit codes: bad input never shows a traceback.

Every error a user can act on is a :class:`conveyor.errors.ConveyorError`; it is caught
here, once, and shown with its own text and exit code.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from conveyor.errors import EXIT_BAD_INPUT, EXIT_FAILED, ConveyorError

F = TypeVar("F", bound=Callable[..., int])

__all__ = ["EXIT_BAD_INPUT", "EXIT_BUG", "EXIT_FAILED", "crash", "fail", "friendly"]

#: A bug in conveyor (sysexits' EX_SOFTWARE).
EXIT_BUG = 70


def fail(exc: ConveyorError) -> int:
    """Show ``exc`` on stderr; its exit code."""
    print(exc.show(), file=sys.stderr)
    return exc.exit_code


def friendly(func: F) -> F:
    """Report errors a user can act on as messages on stderr, with their exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> int:
        try:
            return func(*args, **kwargs)
        except ConveyorError as exc:
            return fail(exc)

    return wrapper  # type: ignore[return-value]


def crash(exc: BaseException) -> int:
    """An unexpected exception: one line on stderr, the traceback in a crash report file."""
    import os
    import tempfile
    import time
    import traceback

    text = "".join(traceback.format_exception(exc))
    where = os.environ.get("CONVEYOR_CRASH_DIR") or tempfile.gettempdir()
    report = os.path.join(where, f"conveyor-crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.txt")
    try:
        with open(report, "w", encoding="utf-8") as handle:
            handle.write(text)
        kept = f"; the details are in {report}"
    except OSError:
        kept = ""
    print(f"conveyor: internal error ({type(exc).__name__}: {exc}){kept}; please report it", file=sys.stderr)
    return EXIT_BUG
