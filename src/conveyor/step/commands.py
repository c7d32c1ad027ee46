"""The three kinds of command a task runs: a python function, a shell command, a notebook.

Each takes a :class:`StepRequest` and returns a :class:`CommandResult`. They write their
output to ``sys.stdout``, which the caller has routed to the attempt's log, and they may run
in the executor's process or in a child process (``conveyor.step.child``).
"""

from __future__ import annotations

import codecs
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from conveyor.step.awaiting import settle, user_frames
from conveyor.step.envoverlay import overlay
from conveyor.step.guard import guarded
from conveyor.step.params import StepInputError, bind_arguments, map_returns, resolve_callable
from conveyor.step.request import CommandResult, StepRequest

#: The runs whose pipeline or steps conveyor is running in this process, newest last ("" for
#: a run whose id is not known yet). A script without a main guard whose functions are steps
#: is imported again by them, and its module-level ``execute()`` runs again: the SDK reads
#: this to return at once instead (``conveyor.sdk``).
_RUNNING: list[str] = []
_RUNNING_LOCK = threading.Lock()


@contextlib.contextmanager
def running(run_id: str = "") -> Iterator[None]:
    """Mark this process as running (a step of) ``run_id`` while the block runs."""
    with _RUNNING_LOCK:
        _RUNNING.append(run_id)
    try:
        yield
    finally:
        with _RUNNING_LOCK:
            _RUNNING.remove(run_id)


def running_run() -> str | None:
    """The run being run in this process (the newest whose id is known, else ""), or None."""
    with _RUNNING_LOCK:
        if not _RUNNING:
            return None
        return next((r for r in reversed(_RUNNING) if r), "")


def error_text(exc: BaseException) -> str:
    """A failed step's one-line error, as every path words it: the exception's type and text."""
    return f"{type(exc).__name__}: {exc}"


def report_failure(exc: BaseException) -> str:
    """The user's own traceback of a step's function's exception, written to stderr (the
    attempt's log), and the one line the run log keeps: the general path's and a map's
    lean path's alike."""
    frames = user_frames(traceback.extract_tb(exc.__traceback__)[1:])
    text = error_text(exc)
    sys.stderr.write(
        "Traceback (most recent call last):\n" + "".join(traceback.format_list(frames)) + text + "\n"
    )
    return text


def run_python(request: StepRequest) -> CommandResult:
    """Call the task's function with its parameters; the user's traceback goes to the log."""
    # What `running` does, written out: this runs once per map item.
    run_id = request.run_id
    with _RUNNING_LOCK:
        _RUNNING.append(run_id)
    try:
        return _call_python(request)
    finally:
        with _RUNNING_LOCK:
            _RUNNING.remove(run_id)


def _call_python(request: StepRequest) -> CommandResult:
    try:
        func = resolve_callable(request.node.command)
        kwargs = bind_arguments(func, request.params)
    except StepInputError as exc:
        print(f"conveyor: {exc}", file=sys.stderr)
        return CommandResult(error=str(exc))
    try:
        if request.env:
            with overlay(request.env):
                value = settle(func(**kwargs))
        else:  # no environment of its own (most steps): no context to enter
            value = settle(func(**kwargs))
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        return CommandResult(error=report_failure(exc))
    try:
        return CommandResult(values=map_returns(value, request.node.returns))
    except StepInputError as exc:
        print(f"conveyor: {exc}", file=sys.stderr)
        return CommandResult(error=str(exc))


def _env_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _decode(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _kill_group(proc: subprocess.Popen[Any]) -> None:
    """Stop a step process: its guard sweeps the whole tree; then the group, to be sure."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=2)
    _kill_group_now(proc)


def _kill_group_now(proc: subprocess.Popen[Any]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def stream_process(
    argv: list[str], env: dict[str, str], cwd: Path, timeout: float | None
) -> tuple[int, bool]:
    """Run a process in its own group, copy its output to sys.stdout; (exit code, timed out)."""
    proc = subprocess.Popen(
        guarded(argv),
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        _kill_group(proc)

    timer = threading.Timer(timeout, expire) if timeout else None
    if timer:
        timer.daemon = True
        timer.start()
    try:
        assert proc.stdout is not None
        # Chunks as they come, not lines: the sink masks secrets across chunk boundaries.
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        while chunk := os.read(proc.stdout.fileno(), 65536):
            sys.stdout.write(decoder.decode(chunk))
        sys.stdout.write(decoder.decode(b"", final=True))
        code = proc.wait()
    except BaseException:
        _kill_group(proc)
        raise
    finally:
        if timer:
            timer.cancel()
    return code, expired.is_set()


def run_shell(request: StepRequest, timeout: float | None = None) -> CommandResult:
    """Run the command in bash with parameters as environment variables; returns are its exports."""
    node = request.node
    env = dict(os.environ)
    for name, value in request.params.items():
        if name.isidentifier():
            env[name] = _env_value(value)
    env.update(request.env)
    env.update(request.secrets)
    with tempfile.TemporaryDirectory(prefix=".conveyor-sh-") as tmp:
        dump = Path(tmp) / "env"
        env["CONVEYOR_ENV_OUT"] = str(dump)
        # The trap records the exported variables however the command ends, `exit` included.
        script = "trap 'env -0 > \"$CONVEYOR_ENV_OUT\"' EXIT\n" + node.command
        code, timed_out = stream_process(["bash", "-c", script], env, request.workdir, timeout)
        if timed_out:
            return CommandResult(error=f"timed out after {timeout:g}s", exit_code=code)
        if code != 0:
            return CommandResult(error=f"shell command exited with code {code}", exit_code=code)
        exported: dict[str, str] = {}
        if dump.exists():
            for item in dump.read_bytes().split(b"\0"):
                key, sep, value = item.decode("utf-8", "replace").partition("=")
                if sep:
                    exported[key] = value
    values = {}
    for spec in node.returns:
        if spec.name not in exported:
            return CommandResult(
                error=f"the shell command did not export '{spec.name}' (add: export {spec.name}=...)",
                exit_code=code,
            )
        values[spec.name] = _decode(exported[spec.name])
    return CommandResult(values=values, exit_code=0)


def run_guarded(request: StepRequest, timeout: float | None = None) -> CommandResult:
    """Run the request's command in this process; any exception becomes a failed result.

    The one place an exception turns into a result, for threads, child processes and Dask
    workers alike. KeyboardInterrupt still interrupts.
    """
    try:
        return run_command(request, timeout)
    except Exception as exc:
        return CommandResult(error=error_text(exc))


def run_command(request: StepRequest, timeout: float | None = None) -> CommandResult:
    """Run the request's command in this process."""
    kind = request.node.command_type
    if kind == "shell":
        return run_shell(request, timeout)
    if kind == "notebook":
        from conveyor.step.notebook import run_notebook

        return run_notebook(request, timeout)
    return run_python(request)
