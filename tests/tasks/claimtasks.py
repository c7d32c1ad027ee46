"""Task functions of the takeover tests: each execution is counted, by the process that ran it."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def tick(x: int, ledger: str, kill_at: int, marker: str) -> int:
    """Append ``PID ITEM`` to ``ledger`` (one write on an O_APPEND descriptor: lines from
    several processes never interleave). Item ``kill_at`` kills its process with SIGKILL
    the first time it runs, before counting itself."""
    if x == kill_at and not Path(marker).exists():
        Path(marker).write_text("killed once")
        os.kill(os.getpid(), signal.SIGKILL)
    fd = os.open(ledger, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{os.getpid()} {x}\n".encode())
    finally:
        os.close(fd)
    time.sleep(0.005)
    return x


def usurp(x: int, runs: str, at: int) -> int:
    """At item ``at``, take the run this step belongs to over, as another process would
    (a retry with --force): the driver running this step is taken over under its feet."""
    if x == at:
        from conveyor.runlog.file import FileRunLogStore

        store = FileRunLogStore(runs)
        run = store.load(store.list_runs()[0].run_id).run
        run.pid, run.host = 1, "usurper"
        assert store.claim(run, run.generation)
    return x
