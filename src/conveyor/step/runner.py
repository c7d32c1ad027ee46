"""A long-lived step process (``isolation: pool``): runs one request after another.

Usage: ``python -m conveyor.step.runner FD``. The pool (``conveyor.step.pool``) writes each
request on descriptor ``FD``: an 8-byte length, a 34-byte end marker and a pickled
tuple: the number the pool gives the step's definition (``TaskNode``), the definition
itself the first time this process is sent it (else None: it keeps those it was sent), and
the fields of the :class:`~conveyor.step.request.StepRequest` but it. A map's items thus do not send
their step again and again. The step's output goes to this process's
stdout and stderr, a pipe the pool reads; once the step has ended and everything it
started is gone, this process writes the marker, an 8-byte length and the pickled
:class:`~conveyor.step.request.CommandResult` on stdout, after all of the step's output.

It is a subreaper: what a step starts and leaves behind is killed when the step ends, as
the guard of a one-off step process does (``conveyor.step.guard``). It exits when the pool
closes the request pipe, and when its parent dies (checked every second).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pickle
import signal
import sys
import threading
import time
from typing import Any

MARKER_BYTES = 34
PR_SET_CHILD_SUBREAPER = 36


def _read(fd: int, size: int) -> bytes:
    parts, left = [], size
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            return b""
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _children_left() -> bool:
    """Whether any process this one started (or collected, as subreaper) is still there;
    zombies are reaped on the way."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return False
        if pid == 0:
            return True


def sweep() -> None:
    """Kill every descendant: what a step left running does not outlive it."""
    me = str(os.getpid())
    for _ in range(50):
        if not _children_left():
            return
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", "rb") as stat:
                    parent = stat.read().rsplit(b")", 1)[1].split()[1].decode()
            except (OSError, IndexError):
                continue
            if parent == me:
                with contextlib.suppress(OSError):
                    os.kill(int(entry), signal.SIGKILL)
        time.sleep(0.02)


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            sweep()
            os._exit(137)


def _stop(signum: int, _: Any) -> None:
    sweep()
    os._exit(128 + signum)


def main(argv: list[str]) -> int:
    """Serve requests until the request pipe closes."""
    requests = int(argv[0])
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    signal.signal(signal.SIGTERM, _stop)
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    from conveyor.step.commands import run_guarded, running
    from conveyor.step.request import CommandResult, StepRequest

    nodes: dict[int, Any] = {}
    with running():  # for the whole process: unpickling a request may import the user's modules
        while True:
            header = _read(requests, 8 + MARKER_BYTES)
            if len(header) < 8 + MARKER_BYTES:
                return 0
            marker = header[8:]
            payload = _read(requests, int.from_bytes(header[:8], "big"))
            try:
                key, node, fields = pickle.loads(payload)
                if node is not None:
                    nodes[key] = node
                request = StepRequest(node=nodes[key], **fields)
                os.chdir(request.workdir)
                if str(request.workdir) not in sys.path:
                    sys.path.insert(0, str(request.workdir))
                result = run_guarded(request)
            except Exception as exc:
                result = CommandResult(error=f"the step could not be started: {type(exc).__name__}: {exc}")
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            sweep()
            try:
                answer = pickle.dumps(result)
            except Exception as exc:
                answer = pickle.dumps(CommandResult(error=f"the step's results cannot be pickled: {exc}"))
            _write(1, marker + len(answer).to_bytes(8, "big") + answer)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
