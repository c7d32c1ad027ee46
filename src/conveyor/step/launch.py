"""Where a command runs: in this process (a thread), or in a child process of its own."""

from __future__ import annotations

import os
import pickle
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from conveyor.step.capture import Sink, capturing
from conveyor.step.commands import run_guarded, stream_process
from conveyor.step.fdcapture import drain
from conveyor.step.request import CommandResult, StepRequest

Launcher = Callable[[StepRequest, float | None, Sink], CommandResult]


def in_process(request: StepRequest, timeout: float | None, sink: Sink) -> CommandResult:
    """Run in the calling thread; with a timeout, in a helper thread that is abandoned on expiry.

    A python function cannot be killed from outside its thread; when it overruns, the attempt
    is recorded as timed out and the function is left to finish in the background. Use
    ``isolation: process`` where a runaway step must be stopped.
    """
    if timeout is None or request.node.command_type != "python":
        with capturing(sink):
            result = run_guarded(request, timeout)
            drain()
            return result
    box: list[CommandResult] = []

    def target() -> None:
        with capturing(sink):
            box.append(run_guarded(request, timeout))
            drain()

    worker = threading.Thread(target=target, daemon=True, name="conveyor-step")
    worker.start()
    worker.join(timeout)
    if worker.is_alive() or not box:
        return CommandResult(error=f"timed out after {timeout:g}s")
    return box[0]


def in_subprocess(request: StepRequest, timeout: float | None, sink: Sink) -> CommandResult:
    """Run in a fresh Python process; a timeout kills it and everything it started."""
    with tempfile.TemporaryDirectory(prefix=".conveyor-task-") as tmp:
        request_file = Path(tmp) / "request.pickle"
        result_file = Path(tmp) / "result.pickle"
        try:
            request_file.write_bytes(pickle.dumps(request))
        except Exception as exc:
            return CommandResult(error=f"the step's parameters cannot be sent to a process: {exc}")
        env = dict(os.environ)
        env.update(request.secrets)
        env["PYTHONPATH"] = os.pathsep.join(p for p in [str(request.workdir), *sys.path] if p)
        argv = [sys.executable, "-m", "conveyor.step.child", str(request_file), str(result_file)]
        with capturing(sink):
            code, timed_out = stream_process(argv, env, request.workdir, timeout)
        if timed_out:
            return CommandResult(error=f"timed out after {timeout:g}s", exit_code=code)
        if not result_file.exists():
            return CommandResult(error=f"the step's process died with exit code {code}", exit_code=code)
        result: CommandResult = pickle.loads(result_file.read_bytes())
        result.exit_code = code
        return result


LAUNCHERS: dict[str, Launcher] = {"thread": in_process, "process": in_subprocess}
