"""``isolation: pool``: steps in a few long-lived processes of their own, not one per step.

``isolation: process`` pays an interpreter start per step (about 0.3 s here): a 1,000-item
map spends minutes starting processes. A pool keeps up to ``max_workers`` step processes
(``conveyor.step.runner``) for the whole run and gives each step to an idle one, so what
process isolation is for still holds: a step that crashes, exits or runs out of memory
takes its own process down, never the engine (the attempt fails and a fresh process takes
its place); a step that overruns its timeout is killed with everything it started; what a
step leaves running is killed when it ends; and no step shares the engine's memory (its
processes are fresh interpreters, or, on the server, forks of a fork server that has read
nothing of the run, ``conveyor.step.zygote``; never forks of the engine). What a pool does not give is a
fresh interpreter per step: module state persists between the steps one process runs, as
it does for steps in threads. A step that declares secrets still runs in a process of its
own, which exits with it: no later step can find its secrets in a pool process's memory.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import pickle
import select
import signal
import subprocess
import sys
import threading
import time

from conveyor.spec.models import TaskNode
from conveyor.step.capture import Sink, capturing
from conveyor.step.launch import in_subprocess
from conveyor.step.request import CommandResult, StepRequest
from conveyor.step.runner import MARKER_BYTES
from conveyor.step.zygote import Forked, ForkServer

#: How long a step waits for a busy process to come free before the pool starts another:
#: cheap map items then share one or two processes instead of starting ``max_workers``.
GRACE = 0.1
#: A new process counts as starting (no other is started meanwhile) until it has run a
#: step, or for this long (seconds) if its first step takes longer.
WARMUP = 2.0


_SERVER: list[ForkServer | None] = []
_SERVER_LOCK = threading.Lock()


def fork_server() -> ForkServer | None:
    """The run's fork server (``conveyor.step.zygote``), taken from the environment once."""
    with _SERVER_LOCK:
        if not _SERVER:
            _SERVER.append(ForkServer.from_environment())
        return _SERVER[0]


class _Died(Exception):
    """The step's process ended before it answered."""


class Runner:
    """One step process of the pool and the pipes to it."""

    def __init__(self) -> None:
        #: Whether it has run a step yet (until then it may still be importing).
        self.answered = False
        self.started = time.monotonic()
        #: When its current step was given to it (the pool grows when every one is long).
        self.since = self.started
        #: The step definitions it has been sent, by id (see :meth:`payload`).
        self._known: dict[int, TaskNode] = {}
        request_r, self._requests = os.pipe()
        self._output, output_w = os.pipe()
        try:
            self.proc: subprocess.Popen[bytes] | Forked = self._start(request_r, output_w)
        finally:
            os.close(request_r)
            os.close(output_w)

    @staticmethod
    def _start(request_r: int, output_w: int) -> subprocess.Popen[bytes] | Forked:
        """Forked by the run's fork server where there is one (``conveyor.step.zygote``: a
        server run), else a fresh interpreter."""
        server = fork_server()
        if server is not None:
            with contextlib.suppress(OSError):  # it has ended: a fresh interpreter, as without
                return server.fork(request_r, output_w)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        return subprocess.Popen(
            [sys.executable, "-m", "conveyor.step.runner", str(request_r)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output_w,
            stderr=output_w,
            pass_fds=(request_r,),
            start_new_session=True,
        )

    def payload(self, request: StepRequest) -> bytes:
        """``request`` as this process reads it: its step's definition in full the first
        time this process runs the step, then only named (``conveyor.step.runner`` keeps
        the definitions it was sent), so a map item sends its parameters and path only."""
        node = request.node
        sent = None if id(node) in self._known else node
        fields = {name: value for name, value in vars(request).items() if name != "node"}
        return pickle.dumps((id(node), sent, fields))

    def run(self, request: StepRequest, payload: bytes, timeout: float | None) -> CommandResult:
        """Send one request (its :meth:`payload`), copy the step's output to ``sys.stdout``
        until its result."""
        marker = b"\0" + os.urandom(16).hex().encode() + b"\0"
        assert len(marker) == MARKER_BYTES
        try:
            os.write(self._requests, len(payload).to_bytes(8, "big") + marker)
            view = memoryview(payload)
            while view:
                view = view[os.write(self._requests, view) :]
        except OSError:
            raise _Died from None
        # Held, so that its id names no other object while this process may be sent it.
        self._known[id(request.node)] = request.node
        deadline = None if timeout is None else time.monotonic() + timeout
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        held = b""
        while True:
            try:
                chunk = self._read(deadline)
            except (_Died, TimeoutError):
                sys.stdout.write(decoder.decode(held, final=True))  # its output up to its end
                raise
            where = (held + chunk).find(marker)
            if where >= 0:
                data = held + chunk
                sys.stdout.write(decoder.decode(data[:where], final=True))
                return self._result(data[where + MARKER_BYTES :], deadline)
            data = held + chunk
            cut = max(0, len(data) - MARKER_BYTES + 1)  # what may begin a marker waits
            sys.stdout.write(decoder.decode(data[:cut]))
            held = data[cut:]

    def _read(self, deadline: float | None) -> bytes:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and (left <= 0 or not select.select([self._output], [], [], left)[0]):
            raise TimeoutError
        try:
            chunk = os.read(self._output, 65536)
        except OSError:  # closed under it: the pool is closing
            raise _Died from None
        if not chunk:
            raise _Died
        return chunk

    def _result(self, data: bytes, deadline: float | None) -> CommandResult:
        while len(data) < 8 or len(data) < 8 + int.from_bytes(data[:8], "big"):
            data += self._read(deadline)
        result: CommandResult = pickle.loads(data[8 : 8 + int.from_bytes(data[:8], "big")])
        result.exit_code = 0 if result.ok else 1  # as a one-off step process's exit code says
        return result

    def exit_code(self) -> int | None:
        """How the process ended (it is killed if it has not)."""
        self.kill()
        return self.proc.returncode

    def kill(self) -> None:
        """Stop the process: it kills what its step started, then the group, to be sure."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=2)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        # Bounded: a fork server stopped by a step (SIGSTOP) reports no ending; the run goes on.
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        self.close()

    def close(self) -> None:
        """Close the pipes: an idle process reads the end of its requests and exits."""
        for fd in (self._requests, self._output):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._requests = self._output = -1


class RunnerPool:
    """Up to ``size`` step processes, started when steps need them, kept until :meth:`close`."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._idle: list[Runner] = []
        self._all: set[Runner] = set()
        self._starting = 0
        self._free = threading.Condition()
        self._closed = False

    def launch(self, request: StepRequest, timeout: float | None, sink: Sink) -> CommandResult:
        """Run one attempt in a pool process (a launcher: see ``conveyor.step.launch``)."""
        if request.secrets:
            return in_subprocess(request, timeout, sink)
        runner = self._take()
        healthy = False
        try:
            try:
                payload = runner.payload(request)
            except Exception as exc:
                healthy = True
                return CommandResult(error=f"the step's parameters cannot be sent to a process: {exc}")
            with capturing(sink):
                result = runner.run(request, payload, timeout)
            healthy = runner.answered = True
            return result
        except TimeoutError:
            return CommandResult(error=f"timed out after {timeout:g}s", exit_code=runner.exit_code())
        except _Died:
            code = runner.exit_code()
            return CommandResult(error=f"the step's process died with exit code {code}", exit_code=code)
        finally:
            self._give(runner, healthy)

    def _take(self) -> Runner:
        """An idle process; else a new one, started only when none is starting or has yet
        to answer its first step (its imports take longer than cheap steps; ``WARMUP``), and
        either there is none at all or every process has been in its current step for
        ``GRACE``: the pool grows for steps that take long, not for cheap map items, which
        only take turns (however many threads wait for them, none waits long)."""
        with self._free:
            while not self._idle:
                room = len(self._all) + self._starting < self.size
                now = time.monotonic()
                warming = self._starting or any(
                    not r.answered and now - r.started < WARMUP for r in self._all
                )
                busy = min((now - r.since for r in self._all), default=GRACE)
                if room and not warming and busy >= GRACE:
                    self._starting += 1
                    break
                self._free.wait(max(GRACE - busy, 0.001) if room and not warming else GRACE)
            else:
                runner = self._idle.pop()
                runner.since = time.monotonic()
                return runner
        return self._start()

    def _start(self) -> Runner:
        """Start a process (``_starting`` was counted by the caller)."""
        try:
            runner = Runner()
        finally:
            with self._free:
                self._starting -= 1
        with self._free:
            self._all.add(runner)
            self._free.notify_all()  # whoever waits on a start may start the next
        return runner

    def prestart(self) -> None:
        """Start one process now, while the engine gets the run going (it imports what a
        step needs meanwhile); the first step then finds it idle."""
        with self._free:
            if self._all or self._starting:
                return
            self._starting += 1
        runner = self._start()
        self._give(runner, True)

    def _give(self, runner: Runner, healthy: bool) -> None:
        if not healthy or self._closed:
            runner.kill()
        with self._free:
            if healthy and not self._closed:
                self._idle.append(runner)
            else:
                self._all.discard(runner)
            self._free.notify()

    def close(self) -> None:
        """Stop every process of the pool (idle ones read the end of their requests)."""
        with self._free:
            self._closed = True
            runners, self._idle = list(self._all), []
        for runner in runners:
            runner.close()
        for runner in runners:
            with contextlib.suppress(subprocess.TimeoutExpired):
                runner.proc.wait(timeout=5)
            if runner.proc.poll() is None:
                runner.kill()
