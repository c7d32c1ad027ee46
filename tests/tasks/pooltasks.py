"""Tasks for ``isolation: pool`` (tests/step/test_pool.py)."""

from __future__ import annotations

import os
import subprocess
import sys


def crash_on(x: int, bad: int) -> int:
    """Print, then end the whole process (as an out-of-memory kill would) on item ``bad``."""
    print(f"item {x} in {os.getpid()}")
    if x == bad:
        sys.stdout.flush()
        os._exit(3)
    return os.getpid()


def leave_behind(pids: str) -> int:
    """Start a process in a session of its own and return without waiting for it."""
    proc = subprocess.Popen(["setsid", "sleep", "303"])
    with open(pids, "w", encoding="utf-8") as out:
        out.write(str(proc.pid))
    return proc.pid


def nap(x: int, seconds: float) -> int:
    """Wait (a step that takes long but no CPU); the process it ran in."""
    import time

    time.sleep(seconds)
    return os.getpid()


def descriptors(x: int) -> list[int]:
    """The descriptors open in this process (the listing's own is left out)."""
    return sorted(int(fd) for fd in os.listdir("/proc/self/fd") if os.path.exists(f"/proc/self/fd/{fd}"))


def parent_descriptors(x: int) -> list[str]:
    """What the descriptors of this process's parent (a pool's fork server) lead to."""
    folder = f"/proc/{os.getppid()}/fd"
    return sorted(os.readlink(f"{folder}/{fd}") for fd in os.listdir(folder))


def dumpable(x: int) -> int:
    """This process's PR_GET_DUMPABLE (a pool process inherits its fork server's)."""
    import ctypes

    return int(ctypes.CDLL(None, use_errno=True).prctl(3, 0, 0, 0, 0))
