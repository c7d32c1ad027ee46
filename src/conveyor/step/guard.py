"""The guard every step process runs under: it dies with conveyor, and takes the step's
whole process tree with it.

``stream_process`` starts ``python -S -c GUARD CMD...`` instead of ``CMD``. The guard asks
the kernel for a signal when its parent (the conveyor thread waiting on it) dies, and
becomes a subreaper, so that processes the step starts in sessions of their own are
reparented to it rather than escaping to init. When conveyor dies, or the step is stopped
(timeout, cancel), the guard kills every descendant it has collected, then exits; so it does
when the step's command ends, so that nothing a step started outlives the step. Linux only:
elsewhere the command runs as it is. The guard's code is passed with ``-c`` and uses the
standard library alone: it costs one bare interpreter start, not an import of conveyor.
"""

from __future__ import annotations

import sys

GUARD = r"""
import ctypes, os, signal, sys, time
PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER = 1, 36
parent = os.getppid()
try:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
except (OSError, AttributeError):
    pass
if os.getppid() != parent:  # conveyor died before the request took effect
    sys.exit(137)

def descendants():
    me, found = str(os.getpid()), []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            if fields[1].decode() == me:
                found.append(int(entry))
    return found

def sweep():
    for _ in range(50):
        pids = descendants()
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        for pid in pids:
            try:
                os.waitpid(pid, os.WNOHANG)
            except OSError:
                pass
        time.sleep(0.02)

def stop(signum, frame):
    sweep()
    os._exit(128 + signum)

signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
child = os.fork()
if child == 0:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        os.execvp(sys.argv[1], sys.argv[1:])
    except OSError as exc:
        print(f"conveyor: cannot run {sys.argv[1]}: {exc}", file=sys.stderr)
        os._exit(127)
while True:
    try:
        pid, status = os.waitpid(child, 0)
        break
    except ChildProcessError:
        status = 0
        break
    except InterruptedError:
        continue
code = os.waitstatus_to_exitcode(status)
sweep()
sys.exit(code if code >= 0 else 128 - code)
"""


def guarded(argv: list[str]) -> list[str]:
    """``argv`` run under the guard (Linux), or as it is elsewhere."""
    if not sys.platform.startswith("linux"):
        return argv
    return [sys.executable, "-S", "-c", GUARD, *argv]
