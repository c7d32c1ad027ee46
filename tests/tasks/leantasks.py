"""Task functions of the lean map item tests (``tests/executors/test_lean_items.py``)."""

from __future__ import annotations

import os
import sys
import time


def work(x: int, bad: int, prefix: str = "item") -> tuple[int, float]:
    """Print a line to stdout and one to stderr, fail at item ``bad``, return two values."""
    print(f"{prefix} {x} says hello")
    print(f"{prefix} {x} warns", file=sys.stderr)
    if x == bad:
        raise ValueError(f"item {x} is bad")
    return x * 2, x / 2


def quiet(x: int) -> int:
    """Nothing printed: no log."""
    return x + 1


def at_fds(x: int) -> int:
    """Write straight to file descriptor 1, past sys.stdout."""
    os.write(1, f"fd {x}\n".encode())
    return x


def not_json(x: int) -> set[int]:
    """A return that is not JSON (the step must say so and fail)."""
    return {x}


def slow_first(x: int, hold: float) -> int:
    """Item 0 runs for ``hold`` seconds."""
    if x == 0:
        time.sleep(hold)
    return x
