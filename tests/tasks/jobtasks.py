"""Task functions of the job and async SDK tests (tests/compat/test_jobs.py, test_async.py)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any


def write_outputs(rows: int = 3) -> tuple[int, float]:
    """Writes a csv and a file in a folder (what a job puts in the catalog); returns the row
    count and a score."""
    Path("out.csv").write_text("".join(f"{i},{i * i}\n" for i in range(rows)))
    Path("folder").mkdir(exist_ok=True)
    Path("folder/notes.txt").write_text(f"{rows} rows\n")
    return rows, rows / 10


def explode() -> None:
    raise RuntimeError("the job broke")


async def greet(name: str = "world") -> str:
    """A coroutine step: it must be awaited in its step, not returned as a coroutine object."""
    await asyncio.sleep(0.01)
    print(f"hello {name} from pid {os.getpid()}")
    return f"hello {name}"


async def shout(greeting: str) -> tuple[str, int]:
    await asyncio.sleep(0.01)
    return greeting.upper(), len(greeting)


async def async_explode() -> None:
    await asyncio.sleep(0)
    raise ValueError("async step failed")


async def stream_tokens(words: int = 3) -> AsyncIterator[dict[str, Any]]:
    """runnable's streaming task: events with a ``type``; the ``done`` one holds the returns."""
    text = []
    for i in range(words):
        await asyncio.sleep(0)
        text.append(f"w{i}")
        yield {"type": "token", "text": f"w{i}"}
    yield {"type": "done", "text": " ".join(text), "count": words}
