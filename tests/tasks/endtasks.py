"""Task functions for the run-ending tests: steps that are still running when a run ends."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any


def nap_until(x: Any, marker: str, seconds: float = 60.0) -> Any:
    """Item ``x`` sleeps until ``marker`` exists (at most ``seconds``): a run ended meanwhile
    leaves it open; once the marker is there (a retry), it returns at once."""
    deadline = time.time() + seconds
    while not Path(marker).exists() and time.time() < deadline:
        time.sleep(0.05)
    return x


def quick(x: Any) -> Any:
    return x


def loud(size: int) -> int:
    """Print ``size`` bytes: output that a small disk or a file size limit cannot keep."""
    sys.stdout.write("x" * size + "\n")
    return size
