"""The run workers of ``conveyor server start``: started, watched, replaced, stopped.

A worker that dies (killed, crashed) is replaced within a second. Workers die with the
server process (the parent-death signal), so a server killed outright leaves none behind
to double up with those of its restart. The number of live workers is written to a small
state file that ``/health`` reads: no live worker is an unhealthy server.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from conveyor.jsontypes import JSONObject, JSONValue

STATE_FILE = "workers.json"
#: A state file older than this says nothing about the workers (its server is gone).
STALE_SECONDS = 10.0


#: Names the supervisor's process in a worker's environment (see :func:`die_with_supervisor`).
SUPERVISOR_VARIABLE = "CONVEYOR_SUPERVISOR_PID"


def die_with_supervisor() -> None:
    """Called first by a worker: when the supervisor's process dies, the worker gets SIGTERM
    (PR_SET_PDEATHSIG), and if it died already, the worker leaves now.

    Set here, after exec, not between fork and exec: the server is multi-threaded, and a
    forked child loading libc through ctypes could hang on a lock another thread held at the
    fork (a replacement worker then never started: seen under load)."""
    parent = os.environ.pop(SUPERVISOR_VARIABLE, None)
    if parent is None:
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if str(os.getppid()) != parent:
        sys.exit(0)


class Supervisor:
    """Keeps ``count`` run workers alive until :meth:`stop`."""

    def __init__(self, url: str, count: int) -> None:
        self.url = url
        self.count = count
        self.state = Path(tempfile.mkdtemp(prefix="conveyor-server-"))
        self.procs: list[subprocess.Popen[bytes]] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="conveyor-supervisor", daemon=True)

    def _spawn(self) -> subprocess.Popen[bytes]:
        argv = [sys.executable, "-m", "conveyor.cli", "server", "worker", "--db", self.url]
        env = dict(os.environ, **{SUPERVISOR_VARIABLE: str(os.getpid())})
        return subprocess.Popen(argv, env=env)

    def start(self) -> None:
        self.procs = [self._spawn() for _ in range(self.count)]
        self._write()
        self._thread.start()

    def _watch(self) -> None:
        while not self._stopping.wait(0.5):
            for index, proc in enumerate(self.procs):
                code = proc.poll()
                if code is not None and not self._stopping.is_set():
                    print(
                        f"conveyor: run worker {proc.pid} ended ({code}); starting another", file=sys.stderr
                    )
                    self.procs[index] = self._spawn()
            self._write()

    def _write(self) -> None:
        live = sum(1 for proc in self.procs if proc.poll() is None)
        data = {"live": live, "expected": self.count, "pids": [p.pid for p in self.procs], "t": time.time()}
        tmp = self.state / f".{STATE_FILE}.tmp"
        tmp.write_text(json.dumps(data))
        os.replace(tmp, self.state / STATE_FILE)

    def stop(self) -> None:
        """Stop every worker: SIGTERM, then SIGKILL for any still there after 10 s."""
        self._stopping.set()
        self._thread.join(timeout=5)
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        deadline = time.time() + 10
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        with contextlib.suppress(OSError):
            (self.state / STATE_FILE).unlink()
            self.state.rmdir()


def live_workers() -> JSONObject | None:
    """What the supervisor last wrote, if a supervisor is running beside this API."""
    state = os.environ.get("CONVEYOR_SERVER_STATE")
    if not state:
        return None
    try:
        data: JSONValue = json.loads((Path(state) / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {"live": 0, "expected": 1}  # a supervisor was meant to be here
    written = data.get("t", 0) if isinstance(data, dict) else None
    if not isinstance(data, dict) or not isinstance(written, int | float):
        return {"live": 0, "expected": 1}  # not what a supervisor writes: as if unreadable
    if time.time() - float(written) > STALE_SECONDS:
        return {"live": 0, "expected": data.get("expected")}
    return data
