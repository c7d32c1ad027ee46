"""Step processes in a sandbox, when the process that runs them is told to (the server).

With ``CONVEYOR_SANDBOX=bwrap`` in its environment (a server worker sets it for the runs it
executes), every step process (shell steps, and python steps, which the server runs in
processes of their own) runs under bubblewrap:

- the file system is read-only, but for the run's work directory (``CONVEYOR_SANDBOX_WRITABLE``)
  and any paths the operator adds (``CONVEYOR_SANDBOX_EXTRA``, separated by ``os.pathsep``);
- the paths in ``CONVEYOR_SANDBOX_HIDE`` (the server's data, other runs' directories, the
  run's private config) are empty; temporary files go to ``.tmp`` in the work directory;
- no network (loopback included, so no database) unless ``CONVEYOR_SANDBOX_NETWORK=1``;
  its own process, IPC and user namespaces; it dies with the step's guard.

The trusted part of conveyor (the engine that records the run log) runs outside it.
"""

from __future__ import annotations

import os
import shutil


def active() -> bool:
    return os.environ.get("CONVEYOR_SANDBOX") == "bwrap"


def writable_dir() -> str | None:
    """Where step processes may write (for their temporary files), when sandboxed."""
    return os.environ.get("CONVEYOR_SANDBOX_WRITABLE") if active() else None


def _paths(name: str) -> list[str]:
    return [p for p in os.environ.get(name, "").split(os.pathsep) if p]


def sandboxed(argv: list[str], cwd: str) -> list[str]:
    """``argv`` under bubblewrap when ``CONVEYOR_SANDBOX=bwrap``; as it is otherwise."""
    if not active():
        return argv
    bwrap = shutil.which("bwrap") or "bwrap"
    # No fresh /tmp over the host's: Python or the code may live under it (a checkout in
    # /tmp); the host's /tmp is read-only like the rest, and TMPDIR is in the work directory.
    args = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    for hidden in _paths("CONVEYOR_SANDBOX_HIDE"):
        if os.path.isdir(hidden):
            args += ["--tmpfs", hidden]
        elif os.path.exists(hidden):
            args += ["--ro-bind", "/dev/null", hidden]
    for place in [*_paths("CONVEYOR_SANDBOX_WRITABLE"), *_paths("CONVEYOR_SANDBOX_EXTRA")]:
        args += ["--bind", place, place]
    args += ["--unshare-all", "--die-with-parent", "--new-session", "--chdir", cwd]
    # Inside, steps (a shell step run by a python child) are already sandboxed: not again.
    args += ["--setenv", "CONVEYOR_SANDBOX", "inside"]
    writable = _paths("CONVEYOR_SANDBOX_WRITABLE")
    if writable:
        scratch = os.path.join(writable[0], ".tmp")
        os.makedirs(scratch, exist_ok=True)
        args += ["--setenv", "TMPDIR", scratch]
    if os.environ.get("CONVEYOR_SANDBOX_NETWORK") == "1":
        args.append("--share-net")
    return [*args, "--", *argv]
