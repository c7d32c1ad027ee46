"""Start-up of a command that runs a pipeline here: conveyor's own work before the user's
code is imported (importing conveyor, pydantic and PyYAML, building the validators, reading
and checking the pipeline and the config), made cheaper in two ways that the run does not see.

- **The cyclic garbage collector is paused**, and what start-up made is then moved out of
  its sight (``gc.freeze``). Start-up makes some 50,000 objects that live as long as the
  process (modules, classes, functions, validators); the collector, left on, walked them
  over and over while they were made, found next to nothing to free, and walked them all
  once more at exit. The run itself (the user's code, the engine's objects) is collected as
  always, and its full collections no longer walk start-up's objects either. What start-up
  left as garbage (a few hundred objects) is kept, not freed: the price of not paying a full
  collection to find it. Only the ``conveyor`` command's own process freezes (its entry
  point says so, :func:`command_process`): a program that calls a command in its process (a
  test, an embedding) has objects of its own alive at that moment, and a frozen object
  that later becomes garbage in a cycle is never freed (nor its finalizer run).
- **pydantic's plugins are not looked up for conveyor's own models.** pydantic looks for
  plugins (the ``pydantic`` entry point group: a scan of every installed distribution's
  metadata) the first time it builds any validator. The validators built in start-up are
  conveyor's (the pipeline, config and backend models, and those of the conveyor plugins
  they name); they are built with ``PYDANTIC_DISABLE_PLUGINS`` set, and it is unset again
  before the user's code is imported, so the user's models get the user's plugins as
  always: pydantic then scans at their first validator, as it would have. Nothing changes
  when the variable is already set, or when the process is not single-threaded (the
  variable is the whole process's: another thread could be building its own models).

On a 50-step chain of no-op tasks the two save a tenth of the process's instructions (1,032 M
to 926 M, measured with callgrind).
"""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

#: pydantic's switch (``pydantic.plugin._loader``): "__all__" turns every plugin off.
PLUGINS_OFF = "PYDANTIC_DISABLE_PLUGINS"
#: Whether this process is the ``conveyor`` command's own (see :func:`command_process`).
_command = False


@contextmanager
def command_process() -> Iterator[None]:
    """Said by the ``conveyor`` command's entry point around the command: this process is
    the command's own, so start-up's objects may be frozen (see the module's docstring)."""
    global _command
    _command = True
    try:
        yield
    finally:
        _command = False


@contextmanager
def startup() -> Iterator[None]:
    """Conveyor's start-up block (see the module's docstring); everything as it was after
    it, even when it raised, except that what it made is frozen."""
    with _collector_paused(), _own_models_without_plugins():
        yield


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The collector off for the block, then (in the command's own process) everything alive
    frozen, and the collector on again. A caller that turned the collector off itself keeps
    it as it set it."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        if _command:
            gc.freeze()
        gc.enable()


@contextmanager
def _own_models_without_plugins() -> Iterator[None]:
    """Validators built in the block skip pydantic's plugin lookup (see the module's
    docstring for when, and why that is only conveyor's models)."""
    if PLUGINS_OFF in os.environ or threading.active_count() != 1:
        yield
        return
    os.environ[PLUGINS_OFF] = "__all__"
    try:
        yield
    finally:
        os.environ.pop(PLUGINS_OFF, None)
