"""A module that ends the process importing it with exit code 0 (a run must not pass as
succeeded because its process said 0: tests/server/test_endings.py)."""

from __future__ import annotations

import os


def reduce(values: list[int]) -> int:
    """Never reached as a reducer would be: importing the module ends the process."""
    return sum(values)


os._exit(0)
