"""Waking an idle worker when a run is queued, instead of waiting for its next poll.

A worker that finds no run waits for a wake-up, or for its poll interval at the longest
(the poll stays: it finds runs whose worker died, and any wake-up that was lost):

- on PostgreSQL, it ``LISTEN``\\ s on the ``conveyor_runs`` channel; a submission sends
  ``NOTIFY`` in the transaction that inserts the run, so the wake-up is delivered when, and
  only if, the run is committed;
- on SQLite (one machine), each worker binds a UNIX datagram socket in the server's private
  state directory (``CONVEYOR_SERVER_STATE/wake``, hidden from runs); a submission sends one
  byte to each socket there after its commit. A worker started without a state directory
  (``conveyor server worker`` on its own) polls.

A wake-up carries nothing: the worker claims from the database as it would on a poll.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import time
from pathlib import Path
from typing import Any

CHANNEL = "conveyor_runs"
#: How long a worker waits for a wake-up before polling the queue anyway (seconds):
#: ``CONVEYOR_WORKER_POLL_SECONDS`` overrides it.
POLL = 1.0


def poll_interval(default: float = POLL) -> float:
    """The worker's poll interval (``CONVEYOR_WORKER_POLL_SECONDS``, else ``default``)."""
    try:
        return max(0.01, float(os.environ.get("CONVEYOR_WORKER_POLL_SECONDS", default)))
    except ValueError:
        return default


def _folder() -> Path | None:
    state = os.environ.get("CONVEYOR_SERVER_STATE")
    return Path(state) / "wake" if state else None


def notify_in(conn: Any) -> None:
    """In the transaction that queues a run (PostgreSQL): wake the listening workers when
    it commits. Nothing on another database (see :func:`signal_local`)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy import text

        conn.execute(text(f"NOTIFY {CHANNEL}"))


def signal_local(engine: Any) -> None:
    """After a run was committed (SQLite): one datagram to each waiting worker's socket.
    A socket whose worker is gone is removed; nothing here may fail a submission."""
    folder = _folder()
    if engine.dialect.name == "postgresql" or folder is None or not folder.is_dir():
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
        sender.setblocking(False)
        for entry in folder.glob("*.sock"):
            try:
                sender.sendto(b"!", str(entry))
            except (ConnectionRefusedError, FileNotFoundError):
                with contextlib.suppress(OSError):
                    entry.unlink()  # its worker died without removing it
            except OSError:
                pass  # its queue is full: that worker has a wake-up waiting already


class Waiter:
    """What an idle worker waits on: notifications, a datagram socket, or only the clock."""

    #: Seconds between attempts to listen again after the PostgreSQL connection was lost.
    RELISTEN = 10.0

    def __init__(self, url: str, poll: float) -> None:
        self.poll = poll
        self._url = url
        self._relisten_at = 0.0
        self._listener: Any = None
        self._socket: socket.socket | None = None
        self._path: Path | None = None
        with contextlib.suppress(Exception):  # no wake-ups is a slower worker, not a broken one
            if url.startswith("postgresql"):
                self._listen(url)
            else:
                self._bind()

    def _listen(self, url: str) -> None:
        import psycopg
        from sqlalchemy.engine import make_url

        dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self._listener = psycopg.connect(dsn, autocommit=True)
        self._listener.execute(f"LISTEN {CHANNEL}")

    def _bind(self) -> None:
        folder = _folder()
        if folder is None:
            return
        folder.mkdir(mode=0o700, exist_ok=True)
        path = folder / f"{os.getpid()}.sock"
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(path))
        sock.setblocking(False)
        self._socket, self._path = sock, path

    def fileno(self) -> int | None:
        if self._listener is not None:
            return int(self._listener.fileno())
        return self._socket.fileno() if self._socket is not None else None

    def wait(self) -> bool:
        """Until a wake-up or the poll interval; whether woken. Pending wake-ups are taken
        all at once: one claim attempt follows however many runs were queued meanwhile."""
        self._relisten()
        fd = self.fileno()
        if fd is None:
            time.sleep(self.poll)
            return False
        try:
            ready, _, _ = select.select([fd], [], [], self.poll)
        except (OSError, ValueError):
            time.sleep(self.poll)
            return False
        self._take()
        return bool(ready)

    def _relisten(self) -> None:
        """Listen again on PostgreSQL once the connection was lost (a restarted database, a
        terminated backend), every RELISTEN seconds at most: else the worker only polled."""
        if self._listener is not None or not self._url.startswith("postgresql"):
            return
        if time.monotonic() < self._relisten_at:
            return
        self._relisten_at = time.monotonic() + self.RELISTEN
        with contextlib.suppress(Exception):
            self._listen(self._url)

    def _take(self) -> None:
        """Consume every wake-up waiting (a lost connection is dropped: the poll goes on)."""
        try:
            if self._listener is not None:
                for _ in self._listener.notifies(timeout=0):
                    pass
            elif self._socket is not None:
                while True:
                    self._socket.recv(16)
        except BlockingIOError:
            return
        except Exception:
            self.close()

    def close(self) -> None:
        """Stop listening; remove the socket."""
        if self._listener is not None:
            with contextlib.suppress(Exception):
                self._listener.close()
            self._listener = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        if self._path is not None:
            with contextlib.suppress(OSError):
                self._path.unlink()
            self._path = None
