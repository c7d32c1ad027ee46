"""Capture at the file descriptors, for steps running in threads of this process.

What a python step's own subprocesses (``os.system``) or C libraries print goes to file
descriptors 1 and 2, not through ``sys.stdout``. While :class:`fd_capture` is in force,
those descriptors are a pipe, and conveyor's own console output goes to copies of the
original descriptors instead. A reader thread gives what arrives on the pipe to the step
that is running when only one is, which it then keeps in its log and masks like the rest
of its output; while several run at once in threads it cannot tell whose it is, and writes
it to the console, masked with every running step's secrets. Run with
``isolation: process`` (or ``max_workers: 1``) to have every byte attributed.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import itertools
import os
import re
import sys
import threading
from typing import Any

from conveyor.step.capture import Redactor, active_sinks

#: Written to the pipe by a step that ends (with a number), so that all it wrote before
#: is read and attributed before it stops counting as running.
MARKER = re.compile(rb"\x00\x01drain(\d{12})\x01\x00")
MARKER_LENGTH = 21
_current: fd_capture | None = None


def drain() -> None:
    """Wait until what this thread's step wrote to the descriptors has been attributed."""
    capture = _current
    if capture is not None:
        capture.drain()


class fd_capture:
    """Redirect fds 1 and 2 to a pipe for the block (see the module docstring)."""

    def __init__(self) -> None:
        self._saved: tuple[int, int] | None = None
        self._streams: tuple[Any, Any] | None = None
        self._drained = threading.Condition()
        self._seen: set[int] = set()
        self._next = itertools.count()

    def __enter__(self) -> fd_capture:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        try:
            saved = (os.dup(1), os.dup(2))
        except OSError:
            return self  # no descriptors to capture (a closed console)
        self._saved = saved
        self._streams = (sys.stdout, sys.stderr)
        self._console = _text(os.dup(saved[1]), sys.stderr)
        sys.stdout = _text(os.dup(saved[0]), sys.stdout)
        sys.stderr = self._console
        read, write = os.pipe()
        os.dup2(write, 1)
        os.dup2(write, 2)
        os.close(write)
        self._reader = threading.Thread(target=self._read, args=(read,), name="conveyor-fds", daemon=True)
        self._reader.start()
        global _current
        _current = self
        return self

    def drain(self) -> None:
        number = next(self._next)
        try:  # outside the lock: the reader takes it when the marker arrives
            os.write(1, b"\x00\x01drain%012d\x01\x00" % number)
        except OSError:
            return
        with self._drained:
            self._drained.wait_for(lambda: number in self._seen, timeout=2)
            self._seen.discard(number)

    def _read(self, fd: int) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        held = b""
        try:
            while chunk := os.read(fd, 65536):
                data, held = held + chunk, b""
                while found := MARKER.search(data):
                    self._dispatch(decoder.decode(data[: found.start()]))
                    data = data[found.end() :]
                    with self._drained:
                        self._seen.add(int(found.group(1)))
                        self._drained.notify_all()
                start = data.rfind(b"\x00\x01", max(0, len(data) - MARKER_LENGTH))
                if start >= 0:  # perhaps the beginning of a marker: wait for the rest
                    data, held = data[:start], data[start:]
                self._dispatch(decoder.decode(data))
            self._dispatch(decoder.decode(held, final=True))
        except OSError:
            pass
        finally:
            os.close(fd)

    def _dispatch(self, text: str) -> None:
        if not text:
            return
        sinks = active_sinks()
        if len(sinks) == 1:
            sinks[0].write(text)
            return
        masked = Redactor(value for sink in sinks for value in sink.redactor.values).text(text)
        with contextlib.suppress(OSError, ValueError):
            self._console.write(masked)
            self._console.flush()

    def __exit__(self, *exc: object) -> None:
        global _current
        _current = None
        if self._saved is None or self._streams is None:
            return
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os.dup2(self._saved[0], 1)  # the pipe's write end closes: the reader sees its end
        os.dup2(self._saved[1], 2)
        self._reader.join(timeout=2)  # a leftover background process may keep it open
        replaced = (sys.stdout, sys.stderr)
        sys.stdout, sys.stderr = self._streams
        for stream in replaced:
            with contextlib.suppress(Exception):
                stream.close()
        for fd in self._saved:
            os.close(fd)


def _text(fd: int, like: Any) -> io.TextIOWrapper:
    """A line-buffered text stream on ``fd`` with the encoding of the stream it stands for."""
    encoding = getattr(like, "encoding", None) or "utf-8"
    return io.TextIOWrapper(io.FileIO(fd, "w"), encoding=encoding, errors="replace", line_buffering=True)
