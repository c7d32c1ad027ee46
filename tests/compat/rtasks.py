"""Functions for the runnable-style pipelines of these tests (written as runnable users write
them: plain functions, pydantic models, numpy and pandas values)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel


class Settings(BaseModel):
    """A pydantic parameter, as runnable's examples pass one."""

    rate: float
    name: str


def make_settings() -> Settings:
    return Settings(rate=0.5, name="demo")


def take_settings(settings: Settings) -> float:
    return settings.rate * 2


def square(x: int) -> int:
    return x * x


def biggest(*values: int) -> int:
    """A reducer as runnable calls reducers: each item's value as one argument."""
    return max(values)


def write_then_fail() -> None:
    """Writes a partial output, then fails: the file must still reach the catalog."""
    Path("partial.csv").write_text("a,b\n1,2\n")
    raise RuntimeError("failed after writing partial.csv")


def say(word: str = "hi") -> str:
    return word


def summary(squares: Any, top: int) -> str:
    return f"{squares}/{top}"


def pid() -> int:
    import os

    return os.getpid()


def write_output(label: str) -> str:
    Path("output.txt").write_text(label)
    return label


def read_output() -> str:
    return Path("output.txt").read_text()


def flaky(marker: str) -> str:
    """Fails the first time (a marker file remembers), then succeeds."""
    if not Path(marker).exists():
        Path(marker).write_text("failed once")
        raise RuntimeError("first time fails")
    return "ok"


def touch(counter: str, label: str = "ran") -> None:
    """Records that it ran (the mocked executor must not run it)."""
    with open(counter, "a") as handle:
        handle.write(label + "\n")
