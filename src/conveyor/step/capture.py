"""Per-attempt capture of stdout and stderr, for steps running in threads of one process.

``sys.stdout`` is process-wide, so a router replaces it while a run is going: what a thread
writes goes to that thread's attempt sink (kept as the attempt's log) and, redacted, to the
console; output from threads with no sink passes straight through.
"""

from __future__ import annotations

import io
import sys
import threading
from collections.abc import Iterable
from typing import IO, Any

LOG_LIMIT = 8 * 1024 * 1024
_local = threading.local()


#: Secrets shorter than this are refused: redaction could not tell them from ordinary text.
MIN_SECRET_LENGTH = 4
MASK = "***"


class Redactor:
    """Replaces secret values with ``***`` in text. It never touches data passed between
    steps: a returned value holding a secret fails its step instead (see ``leaked``)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.values = sorted({s for s in secrets if s}, key=len, reverse=True)

    @property
    def longest(self) -> int:
        return len(self.values[0]) if self.values else 0

    def text(self, text: str) -> str:
        for value in self.values:
            if value in text:
                text = text.replace(value, MASK)
        return text

    def leaked(self, data: bytes) -> bool:
        """Whether ``data`` (a value about to be kept) holds a secret in clear."""
        return any(value.encode() in data for value in self.values)


class Sink:
    """One attempt's output: kept (up to a limit) and optionally echoed to the console.

    Redaction works on the stream, not on each write: the last characters are held back
    until the next write (or :meth:`flush`) shows they do not begin a secret, so a secret
    split across writes, or spanning lines, is masked whole.
    """

    def __init__(self, redactor: Redactor, echo: IO[str] | None) -> None:
        self.redactor = redactor
        self.echo = echo
        self._parts: list[str] = []
        self._size = 0
        self._pending = ""
        self._lock = threading.Lock()

    def write(self, text: str) -> None:
        with self._lock:
            if not self.redactor.values:
                ready = text
            else:
                combined = self.redactor.text(self._pending + text)
                keep = min(len(combined), self.redactor.longest - 1)
                ready, self._pending = combined[: len(combined) - keep], combined[len(combined) - keep :]
            self._emit(ready)

    def so_far(self) -> str:
        """What has been emitted until now (masked), while the attempt still runs."""
        with self._lock:
            return "".join(self._parts)

    def flush(self) -> None:
        """Emit what was held back (the attempt's output has ended)."""
        with self._lock:
            ready, self._pending = self.redactor.text(self._pending), ""
            self._emit(ready)

    def _emit(self, text: str) -> None:
        if not text:
            return
        if self._size < LOG_LIMIT:
            self._parts.append(text)
            self._size += len(text)
            if self._size >= LOG_LIMIT:
                self._parts.append("\n[conveyor: output truncated]\n")
        if self.echo is not None:
            try:
                self.echo.write(text)
                self.echo.flush()
            except (OSError, ValueError):
                pass

    def take(self) -> str:
        """Everything emitted so far, which the sink then forgets: one sink serves a
        thread's map items one after another (the lean path), each taking its output."""
        with self._lock:
            if self._pending:
                ready, self._pending = self.redactor.text(self._pending), ""
                self._emit(ready)
            if not self._parts:
                return ""
            text = "".join(self._parts)
            self._parts, self._size = [], 0
            return text

    def getvalue(self) -> str:
        """Everything emitted, what was held back included (the attempt's output has ended)."""
        with self._lock:  # flush(), in the same hold of the lock
            if self._pending:
                ready, self._pending = self.redactor.text(self._pending), ""
                self._emit(ready)
            return "".join(self._parts) if self._parts else ""


class _Router(io.TextIOBase):
    def __init__(self, original: IO[str]) -> None:
        self.original = original

    def write(self, text: str) -> int:
        sink: Sink | None = getattr(_local, "sink", None)
        if sink is None:
            return self.original.write(text)
        sink.write(text)
        return len(text)

    def flush(self) -> None:
        self.original.flush()

    def isatty(self) -> bool:
        return self.original.isatty()

    def fileno(self) -> int:
        return self.original.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.original, "encoding", "utf-8")


class routed:
    """Install the router on sys.stdout/sys.stderr for the duration of a run."""

    _depth = 0
    _lock = threading.Lock()
    _saved: tuple[Any, Any] | None = None
    #: The routers last taken down, kept alive: ``print`` in another thread (a script
    #: printing a streamed run's events) may hold sys.stdout without a reference of its
    #: own, and a router freed under it breaks that print.
    _retired: tuple[Any, Any] | None = None

    def __enter__(self) -> routed:
        with routed._lock:
            if routed._depth == 0:
                routed._saved = (sys.stdout, sys.stderr)
                sys.stdout = _Router(sys.stdout)
                sys.stderr = _Router(sys.stderr)
            routed._depth += 1
        return self

    def __exit__(self, *exc: object) -> None:
        with routed._lock:
            routed._depth -= 1
            if routed._depth == 0 and routed._saved is not None:
                routed._retired = (sys.stdout, sys.stderr)
                sys.stdout, sys.stderr = routed._saved
                routed._saved = None

    @staticmethod
    def console() -> IO[str]:
        """The real console stream, under the router."""
        saved = routed._saved
        return saved[0] if saved is not None else sys.stdout


#: The sinks of attempts running now, by thread (what fd-level capture attributes to).
ACTIVE: dict[int, Sink] = {}
_active_lock = threading.Lock()


def active_sinks() -> list[Sink]:
    with _active_lock:
        return list(ACTIVE.values())


def attach(sink: Sink) -> Sink | None:
    """Route this thread's output to ``sink`` until :func:`detach`; returns what it routed
    to before (what ``capturing`` does, as two calls: a map item's lean path uses them)."""
    previous: Sink | None = getattr(_local, "sink", None)
    _local.sink = sink
    with _active_lock:
        ACTIVE[threading.get_ident()] = sink
    return previous


def detach(previous: Sink | None) -> None:
    """Route this thread's output back to ``previous`` (what :func:`attach` returned)."""
    _local.sink = previous
    with _active_lock:
        if previous is None:
            ACTIVE.pop(threading.get_ident(), None)
        else:
            ACTIVE[threading.get_ident()] = previous


class capturing:
    """Route this thread's output to ``sink`` while the block runs."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    def __enter__(self) -> Sink:
        self._previous = attach(self.sink)
        return self.sink

    def __exit__(self, *exc: object) -> None:
        detach(self._previous)
