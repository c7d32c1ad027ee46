"""A fork server for a run's pool processes: they start without an interpreter start.

Usage: ``python -m conveyor.step.zygote MODULE ARG...``. This process imports what a pool
process needs (``conveyor.step.runner``, the step machinery, pydantic), then forks: the
child runs ``MODULE`` as ``__main__`` with ``ARG...`` (a server run's engine, ``conveyor.cli
execute ...``), and this process stays, to fork a pool process whenever the engine's pool
asks (``conveyor.step.pool``, through the socket named by :data:`VARIABLE`). A pool process
then starts in about a millisecond instead of paying an interpreter start and those imports
again (about 0.2 s of CPU), and the engine gets the imports for nothing too.

What a forked pool process holds is this process's memory: modules imported before the run
read anything, and nothing more. This process never reads the run's secrets (the descriptor
they come by, like the run log's pipes, is closed here unread once the engine is forked),
never runs a step, and holds no descriptor but its socket to the engine. A pool process gets
its two pipes and nothing else, a session of its own, the engine's import path, and this
process's environment (which never had a secret in it). This process reaps what it forks and
tells the engine how each ended; when the engine ends, it kills what is left and exits with
the engine's status (128 + the signal, if a signal ended it).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import resource
import runpy
import select
import signal
import socket
import subprocess
import sys
import threading
import time

#: The environment variable that gives the engine the descriptor of its socket to this process.
VARIABLE = "CONVEYOR_ZYGOTE_FD"


#: What the worker gives the engine in its environment (descriptor numbers): the fork server
#: and its pool processes, which never use them, are left without them.
ENGINE_ONLY = ("CONVEYOR_RELAY_FDS", "CONVEYOR_RELAY_SECRETS_FD")


def _close_all_but(keep: set[int]) -> None:
    """Close every descriptor above stderr but those in ``keep``: up to the hard limit on
    descriptors, not the soft one (code run before this may have lowered the soft limit
    after moving a descriptor above it)."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    top = 2**31 - 1 if hard == resource.RLIM_INFINITY or hard <= 0 else hard
    low = 3
    for fd in sorted(keep):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, top)


def _not_dumpable() -> None:
    """No process of the run (a step in a pool process) may ptrace the fork server or take
    its descriptors (the socket to the engine, the run's output): as the engine, it makes
    itself non-dumpable; what it forks inherits that."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(4, 0)  # PR_SET_DUMPABLE, 0


def _pool_process(fds: list[int], path: list[str]) -> None:
    """In the forked child: become a pool process (``conveyor.step.runner``); never returns."""
    code = 70
    try:
        from conveyor.step import runner

        os.setsid()
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        requests, output = fds
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(output, 1)
        os.dup2(output, 2)
        _close_all_but({requests})
        sys.path[:] = path
        os.environ.pop(VARIABLE, None)
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in path if p)
        code = runner.main([str(requests)])
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


def _send(sock: socket.socket, text: str) -> None:
    with contextlib.suppress(OSError):
        sock.send(text.encode())


def serve(sock: socket.socket, engine: int) -> int:
    """Fork pool processes on request until the engine ends; the engine's exit status."""
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    forked: set[int] = set()
    listening: list[socket.socket | int] = [sock, wake_r]
    ended: int | None = None
    while ended is None:
        try:
            readable = select.select(listening, [], [], 1.0)[0]
        except InterruptedError:
            readable = []
        if wake_r in readable:
            os.read(wake_r, 512)
        while True:  # reap: the engine's end, or a pool process's (the engine is told)
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            code = os.waitstatus_to_exitcode(status)
            if pid == engine:
                ended = code
            elif pid in forked:
                forked.discard(pid)
                _send(sock, f"ended {pid} {code}")
        if sock in readable and ended is None:
            try:
                data, fds, _, _ = socket.recv_fds(sock, 1 << 20, 2)
            except OSError:
                data, fds = b"", []
            if not data:  # the engine closed its end: it is ending
                listening.remove(sock)
                continue
            try:
                path = [str(p) for p in json.loads(data)["path"]]
                if len(fds) != 2:
                    raise ValueError("two descriptors expected")
                pid = os.fork()
                if pid == 0:
                    sock.close()
                    _pool_process(fds, path)
                forked.add(pid)
                _send(sock, f"started {pid}")
            except (ValueError, KeyError, TypeError, OSError) as exc:
                _send(sock, f"failed {type(exc).__name__}: {exc}")
            finally:
                for fd in fds:
                    os.close(fd)
    for pid in forked:  # what the engine left running ends with it
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    return ended if ended >= 0 else 128 - ended


class Forked:
    """A pool process the fork server started: what the pool uses of ``subprocess.Popen``."""

    def __init__(self, server: ForkServer, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._server = server

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self._server.ended(self.pid, 0.0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        code = self._server.ended(self.pid, timeout)
        if code is None:
            raise subprocess.TimeoutExpired(f"pool process {self.pid}", timeout or 0.0)
        self.returncode = code
        return code

    def send_signal(self, signum: int) -> None:
        os.kill(self.pid, signum)


class ForkServer:
    """The engine's end of the socket to this module's process, if the run was started by it."""

    def __init__(self, fd: int) -> None:
        self._sock = socket.socket(fileno=fd)
        self._one = threading.Lock()  # one fork asked at a time: answers come in order
        self._changed = threading.Condition()
        self._answers: list[str] = []
        self._ended: dict[int, int] = {}
        self._gone = False
        threading.Thread(target=self._read, daemon=True, name="conveyor-forks").start()

    @classmethod
    def from_environment(cls) -> ForkServer | None:
        """The fork server :data:`VARIABLE` names (taken out of the environment: no process
        the engine starts sees it), or None."""
        value = os.environ.pop(VARIABLE, "")
        try:
            return cls(int(value)) if value else None
        except (ValueError, OSError):
            return None

    def fork(self, requests: int, output: int) -> Forked:
        """A new pool process reading requests on ``requests``, writing on ``output``
        (the caller closes its copies); OSError if the server cannot start one."""
        path = json.dumps({"path": [p for p in sys.path if isinstance(p, str)]}).encode()
        with self._one:
            socket.send_fds(self._sock, [path], [requests, output])
            with self._changed:
                while not self._answers and not self._gone:
                    self._changed.wait()
                if not self._answers:
                    raise OSError("the fork server has ended")
                answer = self._answers.pop(0)
        if not answer.startswith("started "):
            raise OSError(answer)
        return Forked(self, int(answer.split()[1]))

    def ended(self, pid: int, timeout: float | None) -> int | None:
        """How process ``pid`` ended (as ``Popen.returncode`` says it), waiting up to
        ``timeout`` seconds (None: for good); None if it has not."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while pid not in self._ended:
                if self._gone:
                    return -signal.SIGKILL  # the server kills what it forked when it ends
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._changed.wait(left)
            return self._ended[pid]

    def _read(self) -> None:
        while True:
            try:
                data = self._sock.recv(4096)
            except OSError:
                data = b""
            with self._changed:
                if not data:
                    self._gone = True
                elif data.startswith(b"ended "):
                    _, pid, code = data.decode().split()
                    self._ended[int(pid)] = int(code)
                else:
                    if data.startswith(b"started "):  # a pid used again: its old ending is not its
                        self._ended.pop(int(data.split()[1]), None)
                    self._answers.append(data.decode(errors="replace"))
                self._changed.notify_all()
            if not data:
                return


def main(argv: list[str]) -> int:
    """Import, fork the engine (``argv``: a module and its arguments), then serve."""
    if not argv:
        print("usage: python -m conveyor.step.zygote MODULE ARG...", file=sys.stderr)
        return 2
    import conveyor.step.commands
    import conveyor.step.runner  # noqa: F401

    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    engine = os.fork()
    if engine == 0:
        ours.close()
        os.environ[VARIABLE] = str(theirs.fileno())
        sys.argv = list(argv)
        runpy.run_module(argv[0], run_name="__main__", alter_sys=True)
        return 0
    theirs.close()
    _not_dumpable()
    for name in ENGINE_ONLY:
        os.environ.pop(name, None)
    _close_all_but({ours.fileno()})  # the run log's pipes, the secrets' descriptor: unread
    return serve(ours, engine)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
