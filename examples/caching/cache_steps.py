"""Steps of the caching example: an expensive one, and one that uses its result."""

import time
from pathlib import Path


def expensive(size: int) -> list[int]:
    """Takes a while (two seconds); its result depends only on ``size`` and this code."""
    time.sleep(2)
    Path("out").mkdir(exist_ok=True)  # out/ is git-ignored: run from the repository, it stays clean
    Path("out/squares.txt").write_text("\n".join(str(n * n) for n in range(size)))
    return [n * n for n in range(size)]


def summarise(squares: list[int]) -> float:
    """Cheap, but cached too: it receives the same squares, so its key is the same."""
    return sum(squares) / len(squares)
