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


class Redactor:
    """Replaces secret values with ``***`` in text and in JSON-like data."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.values = sorted({s for s in secrets if s and len(s) >= 3}, key=len, reverse=True)

    def text(self, text: str) -> str:
        for value in self.values:
            if value in text:
                text = text.replace(value, "***")
        return text

    def data(self, data: Any) -> Any:
        if not self.values:
            return data
        if isinstance(data, str):
            return self.text(data)
        if isinstance(data, dict):
            return {k: self.data(v) for k, v in data.items()}
        if isinstance(data, list | tuple):
            return [self.data(v) for v in data]
        return data


class Sink:
    """One attempt's output: kept (up to a limit) and optionally echoed to the console."""

    def __init__(self, redactor: Redactor, echo: IO[str] | None) -> None:
        self.redactor = redactor
        self.echo = echo
        self._parts: list[str] = []
        self._size = 0
        self._lock = threading.Lock()

    def write(self, text: str) -> None:
        text = self.redactor.text(text)
        with self._lock:
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

    def getvalue(self) -> str:
        with self._lock:
            return "".join(self._parts)


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
                sys.stdout, sys.stderr = routed._saved
                routed._saved = None

    @staticmethod
    def console() -> IO[str]:
        """The real console stream, under the router."""
        saved = routed._saved
        return saved[0] if saved is not None else sys.stdout


class capturing:
    """Route this thread's output to ``sink`` while the block runs."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    def __enter__(self) -> Sink:
        self._previous = getattr(_local, "sink", None)
        _local.sink = self.sink
        return self.sink

    def __exit__(self, *exc: object) -> None:
        _local.sink = self._previous
