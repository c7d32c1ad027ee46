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


def mutate(x: int, lst: list[int]) -> int:
    """Append to a parameter cast for the call: each call gets its own list."""
    lst.append(x)
    return len(lst)


from math import hypot as no_signature  # noqa: E402  (a builtin whose signature cannot be read)

from pydantic import BaseModel, field_serializer, field_validator  # noqa: E402


class Picky(BaseModel):
    """A model whose validator raises TypeError (not a validation error) for a == 1."""

    a: int

    @field_validator("a")
    @classmethod
    def _no_one(cls, value: int) -> int:
        if value == 1:
            raise TypeError("one is not welcome")
        return value


def picky(x: Picky) -> int:
    return x.a


class Unsaid(BaseModel):
    """A model whose dump raises for item 1 (a serializer error, a ValueError)."""

    a: object


def unsaid(x: int) -> Unsaid:
    return Unsaid(a=object() if x == 1 else x)


class Loud(BaseModel):
    """A model whose serializer raises a RuntimeError for item 1 (not a ValueError)."""

    a: int

    @field_serializer("a")
    def _say(self, value: int) -> int:
        if value == 1:
            raise RuntimeError("one cannot be said")
        return value


def loud(x: int) -> Loud:
    return Loud(a=x)


class Sly(dict[str, int]):
    """A dict whose items raise (json's encoder asks a dict subclass for them)."""

    def items(self):  # type: ignore[override]
        raise RuntimeError("no items today")


def sly(x: int) -> dict[str, int]:
    return Sly(a=x) if x == 1 else {"a": x}


class Quitting(dict[str, int]):
    """A dict whose items end the process (SystemExit), when json's encoder asks."""

    def items(self):  # type: ignore[override]
        sys.exit(0)


def quits(x: int) -> dict[str, int]:
    return Quitting(a=x) if x == 1 else {"a": x}


class Shifty(dict[str, int]):
    """A dict that encodes once, then raises: what was checked is what is kept."""

    told = False

    def items(self):  # type: ignore[override]
        if self.told:
            raise RuntimeError("told once already")
        self.told = True
        return super().items()


def shifty(x: int) -> dict[str, int]:
    return Shifty(a=x)


__all__ = ["no_signature"]
