"""Async step functions: a coroutine is awaited, an async generator drained, in the step.

A step calls its function in a thread or process of its own, where no event loop runs: the
result of an ``async def`` function is run there to its end with ``asyncio.run``, so the
step ends when the coroutine does, and its value is mapped onto ``returns`` as any other.
An async generator (runnable's streaming tasks) yields events, dicts with a ``type``: each
is written to the step's log as one JSON line, and the values of the event whose type is
``done`` (its other keys, in order) are what the step returns.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import traceback
from collections.abc import AsyncIterator, Coroutine, Iterable
from types import AsyncGeneratorType, CoroutineType
from typing import Any

#: The event type whose other keys are an async generator step's returned values (runnable's).
STREAM_END = "done"


def settle(value: Any) -> Any:
    """``value`` as a step returns it: a coroutine's result, an async generator's last
    ``done`` event's values; anything else unchanged."""
    if not isinstance(value, CoroutineType | AsyncGeneratorType):  # the common case: one check
        return value
    if isinstance(value, CoroutineType):
        return _run(value)
    return _run(_drain(value))


#: Frames of the machinery that awaits a step, left out of the user's traceback.
#: (asyncio's folder is found beside the standard library's ``os``: importing asyncio, with
#: ssl, costs every run tens of milliseconds, and only an async step needs it.)
_MACHINERY = (os.path.join(os.path.dirname(os.__file__), "asyncio") + os.sep, os.path.abspath(__file__))


def user_frames(frames: Iterable[traceback.FrameSummary]) -> list[traceback.FrameSummary]:
    """``frames`` without those of asyncio and of this module: a failed async step's log
    shows the user's own code, as a plain function's does."""
    return [f for f in frames if not os.path.abspath(f.filename).startswith(_MACHINERY)]


def _run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    # A loop already runs in this thread (a step called from async code): run it in another.
    returned: list[object] = []
    raised: list[BaseException] = []

    def target() -> None:
        try:
            returned.append(asyncio.run(coroutine))
        except BaseException as exc:  # re-raised in the step's thread, as if raised there
            raised.append(exc)

    thread = threading.Thread(target=target, name="conveyor-await")
    thread.start()
    thread.join()
    if raised:
        raise raised[0]
    return returned[0] if returned else None


async def _drain(events: AsyncIterator[Any]) -> Any:
    returned: Any = None
    async for item in events:
        if not (isinstance(item, dict) and "type" in item):
            continue
        sys.stdout.write(json.dumps(item, default=str) + "\n")
        if item["type"] == STREAM_END:
            values = [v for k, v in item.items() if k != "type"]
            returned = values[0] if len(values) == 1 else tuple(values) if values else None
    return returned
