"""Capture at the file descriptors, for steps running in threads of this process.

What a python step's own subprocesses (``os.system``) or C libraries print goes to file
descriptors 1 and 2, not through ``sys.stdout``. While :class:`fd_capture` is in force,
those descriptors are a pipe, and conveyor's own console output goes to copies of the
original descriptors instead. A reader thread gives what arrives on the pipe to the step
that is running when only one is, which it then keeps in its log and masks like the rest
of its output (a step that ends first reads what is left in the pipe itself, so nothing it
wrote arrives after it); while several run at once in threads it cannot tell whose it is,
and writes it to the console, masked with every running step's secrets. Run with
``isolation: process`` (or ``max_workers: 1``) to have every byte attributed.
"""

from __future__ import annotations

import array
import codecs
import contextlib
import fcntl
import io
import os
import select
import sys
import termios
import threading
from typing import Any

from conveyor.step.capture import Redactor, active_sinks

_current: fd_capture | None = None


def drain() -> None:
    """Attribute what this thread's step wrote to the descriptors before it ends."""
    capture = _current
    if capture is not None:
        capture.drain()


class fd_capture:
    """Redirect fds 1 and 2 to a pipe for the block (see the module docstring)."""

    def __init__(self) -> None:
        self._saved: tuple[int, int] | None = None
        self._streams: tuple[Any, Any] | None = None
        # Reading and attributing happen under this lock, by the reader or by a step that
        # ends (drain): once a step holds it and the pipe is empty, all it wrote is placed.
        self._lock = threading.Lock()
        self._read_fd = -1
        self._waiting = array.array("i", [0])
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

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
        os.set_blocking(read, False)
        self._read_fd = read
        os.dup2(write, 1)
        os.dup2(write, 2)
        os.close(write)
        self._reader = threading.Thread(target=self._read, args=(read,), name="conveyor-fds", daemon=True)
        self._reader.start()
        global _current
        _current = self
        return self

    def drain(self) -> None:
        with self._lock:
            # Asking how much waits is cheaper than a read that finds nothing (an exception
            # per map item): most steps write nothing to the descriptors.
            try:
                fcntl.ioctl(self._read_fd, termios.FIONREAD, self._waiting)
            except OSError:
                pass
            else:
                if not self._waiting[0]:
                    return
            self._take()

    def _take(self) -> bool:
        """Read and attribute what is in the pipe now; False at its end. Under the lock."""
        while True:
            try:
                chunk = os.read(self._read_fd, 65536)
            except BlockingIOError:
                return True
            except OSError:
                return False
            if not chunk:
                self._dispatch(self._decoder.decode(b"", final=True))
                return False
            self._dispatch(self._decoder.decode(chunk))

    def _read(self, fd: int) -> None:
        try:
            while True:
                select.select([fd], [], [])
                with self._lock:
                    if not self._take():
                        return
        except (OSError, ValueError):
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
