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

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_BUG",
    "EXIT_FAILED",
    "crash",
    "fail",
    "friendly",
    "missing_extra",
    "unexpected",
]

#: A bug in conveyor (sysexits' EX_SOFTWARE).
EXIT_BUG = 70


def fail(exc: ConveyorError) -> int:
    """Show ``exc`` on stderr; its exit code. An error that came from an optional module not
    being installed also says which extra brings it, if its own text does not."""
    text = exc.show()
    print(text, file=sys.stderr)
    found = None if "pip install" in text else missing_extra(exc, _command(sys.argv[1:]))
    if found is not None:
        print(_needs(*found), file=sys.stderr)
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


#: The optional modules conveyor imports lazily, and the extras that bring them (in
#: pyproject.toml's ``[project.optional-dependencies]``; ``tests/cli/test_extras.py`` keeps
#: the two in step). Where several extras bring a module, the first is named unless the
#: command's own extra (:data:`COMMAND_EXTRAS`) is among them.
MODULE_EXTRAS: dict[str, tuple[str, ...]] = {
    "fastapi": ("server", "ui"),
    "uvicorn": ("server", "ui"),
    "sqlalchemy": ("postgres", "server"),
    "alembic": ("server",),
    "httpx": ("server", "argo"),
    "orjson": ("ui",),
    "psycopg": ("postgres",),
    "distributed": ("dask",),
    "s3fs": ("s3",),
    "nbformat": ("notebook",),
    "nbclient": ("notebook",),
    "ipykernel": ("notebook",),
    "jsonschema": ("argo",),
}
#: The extra a command group is for: ``conveyor ui`` needs fastapi from ``ui``, not ``server``.
COMMAND_EXTRAS = {"server": "server", "ui": "ui", "submit": "server"}


def missing_extra(exc: BaseException, command: str = "") -> tuple[str, str] | None:
    """(extra, module) when ``exc``, or an error it was raised from, is an optional module
    that is not installed; None for any other error."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        if isinstance(current, ModuleNotFoundError) and current.name:
            module = current.name.partition(".")[0]
            extras = MODULE_EXTRAS.get(module)
            if extras:
                wanted = COMMAND_EXTRAS.get(command)
                return (wanted if wanted in extras else extras[0]), module
        current = current.__cause__ or current.__context__
    return None


def unexpected(exc: BaseException, argv: list[str] | None = None) -> int:
    """An exception no command turned into a message: a missing optional dependency is the
    user's to install (exit 2, naming the extra); anything else is a bug (:func:`crash`)."""
    found = missing_extra(exc, _command(sys.argv[1:] if argv is None else argv))
    if found is None:
        return crash(exc)
    print(_needs(*found), file=sys.stderr)
    return EXIT_BAD_INPUT


def _command(argv: list[str]) -> str:
    """The command group named on a command line (its first word that is not an option)."""
    return next((a for a in argv if not a.startswith("-")), "")


def _needs(extra: str, module: str) -> str:
    return (
        f"conveyor: this command needs conveyor[{extra}] (the module '{module}' is not installed): "
        f"pip install 'conveyor[{extra}]'"
    )


def crash(exc: BaseException) -> int:
    """An unexpected exception: one line on stderr, the traceback in a crash report file (in
    $CONVEYOR_CRASH_DIR, created if missing, else the temporary directory)."""
    import os
    import tempfile
    import time
    import traceback

    text = "".join(traceback.format_exception(exc))
    name = f"conveyor-crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.txt"
    kept = ""
    for where in dict.fromkeys(filter(None, [os.environ.get("CONVEYOR_CRASH_DIR"), tempfile.gettempdir()])):
        report = os.path.join(where, name)
        try:
            os.makedirs(where, exist_ok=True)
            with open(report, "w", encoding="utf-8") as handle:
                handle.write(text)
        except OSError:
            continue
        kept = f"; the details are in {report}"
        break
    print(f"conveyor: internal error ({type(exc).__name__}: {exc}){kept}; please report it", file=sys.stderr)
    return EXIT_BUG
