"""Turning known failures into messages and exit codes: bad input never shows a traceback."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., int])

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


def friendly(func: F) -> F:
    """Report bad input and refusals as messages on stderr with exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> int:
        from conveyor.executors.run import RunRefused
        from conveyor.graph.replay import NotReached
        from conveyor.runlog.base import RunNotFoundError
        from conveyor.spec.errors import SpecError

        try:
            return func(*args, **kwargs)
        except SpecError as exc:
            print(str(exc), file=sys.stderr)
        except (RunRefused, NotReached) as exc:
            print(f"conveyor: {exc}", file=sys.stderr)
        except RunNotFoundError as exc:
            print(f"conveyor: {exc}; list runs with: conveyor runs list -c CONFIG", file=sys.stderr)
        return EXIT_BAD_INPUT

    return wrapper  # type: ignore[return-value]
