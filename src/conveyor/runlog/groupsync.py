"""A store's own group commit: what was written is synced within a few milliseconds, whoever
wrote it.

The store writer of a run syncs its store once per group (``durability: batched``), but a
store is also written by callers that never sync: the server's worker writes what a
sandboxed run relays to it. A store whose appends are not on disk when they return (a
PostgreSQL commit with ``synchronous_commit`` off) keeps its promise with this: the first
write since the last sync wakes a thread that waits :data:`WINDOW` for more, then syncs
everything at once. A sync by the caller meanwhile makes the thread's a no-op.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

#: Seconds the writes of a group gather before their one sync (as the store writer's).
WINDOW = 0.01


class GroupSync:
    """Calls ``sync`` within :data:`WINDOW` of each :meth:`written`, once per group."""

    def __init__(self, sync: Callable[[], None], window: float = WINDOW) -> None:
        self._sync, self.window = sync, window
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._due = False
        self._closing = False
        self._thread: threading.Thread | None = None
        #: What the last background sync raised (kept for the next caller to see).
        self.failure: BaseException | None = None

    def written(self) -> None:
        """Something was written that is not yet on disk: sync it soon."""
        with self._lock:
            if self._due or self._closing:
                return
            self._due = True
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="conveyor-group-sync", daemon=True)
                self._thread.start()
            self._wake.notify()

    def sync(self) -> None:
        """Sync now what was written (the caller's own group commit); raise what the last
        background sync met, if it failed."""
        with self._lock:
            self._due = False
            failure, self.failure = self.failure, None
        if failure is not None:
            raise failure
        self._sync()

    def _run(self) -> None:
        while True:
            with self._lock:
                while not (self._due or self._closing):
                    self._wake.wait()
                if self._closing:
                    return
                self._wake.wait(self.window)  # let the group gather
                if not self._due:
                    continue  # the caller synced meanwhile
                self._due = False
            try:
                self._sync()
            except Exception as exc:  # a database gone: the next caller's sync raises it
                with self._lock:
                    self.failure = exc

    def close(self) -> None:
        """Sync what is due, then stop the thread."""
        with self._lock:
            due, self._due, self._closing = self._due, False, True
            self._wake.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()
        if due:
            self._sync()
