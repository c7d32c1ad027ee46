"""Environment variables for one python step running on a thread, without touching the
process's environment (other steps run beside it on other threads).

A loop's ``index_as`` is an environment variable of the steps in each iteration, as
runnable's functions read it (``os.environ["counter"]``). Threads share ``os.environ``, so
setting it there would race; instead ``os.environ`` looks up a thread's own values first.
Reads through ``os.environ[...]``, ``.get`` and ``os.getenv`` see them; child processes
the step starts itself, which copy the real environment, do not (a shell step gets them
in its environment directly).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Mapping
from typing import Any

_local = threading.local()
_install_lock = threading.Lock()


class _OverlaidEnviron(type(os.environ)):  # type: ignore[misc]
    """``os.environ`` with the current thread's step variables looked up first."""

    def __getitem__(self, key: str) -> Any:
        extra = getattr(_local, "env", None)
        if extra and key in extra:
            return extra[key]
        return super().__getitem__(key)


def _install() -> None:
    with _install_lock:
        if not isinstance(os.environ, _OverlaidEnviron):
            os.environ.__class__ = _OverlaidEnviron


@contextlib.contextmanager
def overlay(env: Mapping[str, str]) -> Iterator[None]:
    """While the block runs, this thread sees ``env`` in ``os.environ``."""
    if not env:
        yield
        return
    _install()
    before = getattr(_local, "env", None)
    _local.env = {**(before or {}), **env}
    try:
        yield
    finally:
        _local.env = before
