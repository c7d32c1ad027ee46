"""The SDK as users import it: ``from conveyor import Pipeline, PythonTask``.

The names and keyword arguments are runnable's, so that a runnable SDK pipeline runs here
once its ``from runnable import ...`` lines read ``from conveyor import ...``. The
definitions live in ``conveyor.spec.sdk`` (plain data, no I/O); running them needs the
executors, so ``execute`` is added here, above both layers.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from types import FrameType

from conveyor.errors import EXIT_FAILED, ConveyorError
from conveyor.executors.feed import EventDict, Feed
from conveyor.executors.run import RunResult, open_store
from conveyor.executors.run import execute as _execute
from conveyor.executors.stream import Subscriber
from conveyor.runlog.base import RunNotFoundError
from conveyor.runlog.records import RunRecord, Status
from conveyor.spec import sdk as _sdk
from conveyor.spec.config import RunConfig
from conveyor.spec.load import config_from_data, load_config, load_parameters
from conveyor.spec.sdk import (
    AsyncPythonTask,
    Catalog,
    Conditional,
    Fail,
    Loop,
    Map,
    NotebookTask,
    Parallel,
    PythonTask,
    ShellTask,
    Stub,
    Success,
    json,
    metric,
    pickled,
)
from conveyor.step.commands import running, running_run

__all__ = [
    "AsyncPipeline",
    "AsyncPythonTask",
    "Catalog",
    "Conditional",
    "ExecutionFailedError",
    "Fail",
    "Loop",
    "Map",
    "NotebookJob",
    "NotebookTask",
    "Parallel",
    "Pipeline",
    "PythonJob",
    "PythonTask",
    "RunResult",
    "ShellJob",
    "ShellTask",
    "Stub",
    "Success",
    "json",
    "metric",
    "pickled",
]


#: What ``execute()`` and its kin take as a config: a RunConfig, a mapping in the config
#: format, a file's path, or None (the defaults). One name for the seven places that take it.
ConfigArg = RunConfig | Mapping[str, object] | str | os.PathLike[str] | None


class ExecutionFailedError(ConveyorError):
    """A pipeline run by ``Pipeline.execute()`` did not succeed. It carries the result (status,
    run id, failed steps), so that a script can report it; uncaught, it ends the script with a
    non-zero exit, as a failed run must."""

    exit_code = EXIT_FAILED

    def __init__(self, result: RunResult) -> None:
        self.result = result
        self.run_id = result.run_id
        self.status = result.status
        self.failed_steps = list(result.failed_steps)
        failed = f"; failed: {', '.join(self.failed_steps[:10])}" if self.failed_steps else ""
        super().__init__(f"run '{result.run_id}' {result.status}{failed}")


class Pipeline(_sdk.Pipeline):
    """A pipeline built in Python that runs here with ``execute()``, or is written out with ``to_yaml()``."""

    def execute(
        self,
        configuration_file: ConfigArg = None,
        run_id: str | None = None,
        tag: str | None = None,
        parameters_file: str | os.PathLike[str] | None = None,
        log_level: str | None = None,
        parameters: Mapping[str, object] | None = None,
        raise_on_error: bool = True,
        config: ConfigArg = None,
    ) -> RunResult:
        """Run this pipeline here and now; the result carries status, run id and parameters.

        ``configuration_file`` (or ``config``) is a config file path, a mapping in the config
        format, or a RunConfig; parameters are merged over ``parameters_file`` and
        ``CONVEYOR_PRM_*`` variables. With ``CONVEYOR_RETRY_RUN_ID`` (or runnable's
        ``RUNNABLE_RETRY_RUN_ID``) set, the run it names is resumed instead, in place, from
        its parameters. runnable's ``RUNNABLE_CONFIGURATION_FILE``, ``RUNNABLE_PARAMETERS_FILE``
        and ``RUNNABLE_RUN_ID`` win over the arguments, as they do in runnable (its scripts
        and test harnesses set them). A run that does not succeed raises
        :class:`ExecutionFailedError` (with the result), unless ``raise_on_error=False``.
        ``tag`` is kept in the run's record; ``log_level`` is accepted for runnable's scripts
        (conveyor's steps' output is theirs, unfiltered).
        """
        return self._run(
            sys._getframe(1),
            configuration_file,
            run_id,
            tag,
            parameters_file,
            parameters,
            raise_on_error,
            config=config,
        )

    def _run(
        self,
        caller: FrameType,
        configuration_file: ConfigArg,
        run_id: str | None,
        tag: str | None,
        parameters_file: str | os.PathLike[str] | None,
        parameters: Mapping[str, object] | None,
        raise_on_error: bool,
        subscribers: Sequence[Subscriber] = (),
        store_copies: bool = True,
        config: ConfigArg = None,
    ) -> RunResult:
        """What :meth:`execute` does, for every way the SDK runs a pipeline (a job, a
        stream): ``caller`` is the user's frame (see ``_reentered``)."""
        again = _reentered(caller)
        if again is not None:
            return again
        env = os.environ
        configuration_file = env.get("RUNNABLE_CONFIGURATION_FILE") or configuration_file
        parameters_file = env.get("RUNNABLE_PARAMETERS_FILE") or parameters_file
        run_id = env.get("RUNNABLE_RUN_ID") or run_id
        chosen = config if config is not None else configuration_file or None
        if chosen is None or isinstance(chosen, RunConfig):
            run_config = chosen or RunConfig()
        elif isinstance(chosen, Mapping):
            run_config = config_from_data(chosen)
        else:
            run_config = load_config(chosen)
        retry = _retry_variable()
        if retry is not None and not run_config.retry_of:
            done = _already_succeeded(run_config, retry)
            if done is not None:
                return done
            run_config = run_config.model_copy()
            run_config._retry_of = retry
        params: dict[str, object] = {**load_parameters(parameters_file or None), **(parameters or {})}
        with running():
            result = _execute(
                self.load(),
                run_config,
                params,
                run_id=run_id or None,
                tag=tag or None,
                subscribers=subscribers,
                store_copies=store_copies,
            )
        if raise_on_error and not result.ok:
            raise ExecutionFailedError(result)
        return result


class AsyncPipeline(Pipeline):
    """runnable's pipeline of async steps. conveyor awaits a coroutine step in its own step
    (``conveyor.step.awaiting``), so any pipeline may hold them; what this class adds is a
    run followed from async code: :meth:`execute_streaming` yields the run's events as they
    happen, and :meth:`execute_async` awaits the run's result. ``execute()`` runs it as any
    pipeline."""

    async def execute_streaming(
        self,
        configuration_file: ConfigArg = None,
        run_id: str | None = None,
        tag: str | None = None,
        parameters_file: str | os.PathLike[str] | None = None,
        log_level: str | None = None,
        parameters: Mapping[str, object] | None = None,
    ) -> AsyncIterator[EventDict]:
        """Run the pipeline (in a thread, so the caller's event loop goes on) and yield its
        events as dicts as they happen, in order: the run's start (``e: run``), each
        step's ``start`` and ``end`` (status, returns, metrics, error), composite steps'
        ``node`` events, and the run's end (``e: run`` with its final status). The run is
        recorded as ``execute()`` records it; one that does not succeed raises
        :class:`ExecutionFailedError` once its events have been yielded."""
        # Decided now, while the caller's stack reaches the module being imported: in the run's
        # thread the caller's coroutine is suspended and its stack ends at it.
        caller = sys._getframe(1)
        if _reentered(caller) is not None:
            return
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[EventDict | None] = asyncio.Queue()

        def deliver(event: EventDict | None) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, event)

        def run() -> RunResult:
            try:
                return self._run(
                    caller,
                    configuration_file,
                    run_id,
                    tag,
                    parameters_file,
                    parameters,
                    raise_on_error=True,
                    subscribers=[Feed(deliver)],
                )
            finally:
                deliver(None)  # after every event: the stream is drained before the run returns

        running_run = asyncio.ensure_future(asyncio.to_thread(run))
        while (event := await queue.get()) is not None:
            yield event
        await running_run

    async def execute_async(
        self,
        configuration_file: ConfigArg = None,
        run_id: str | None = None,
        tag: str | None = None,
        parameters_file: str | os.PathLike[str] | None = None,
        log_level: str | None = None,
        parameters: Mapping[str, object] | None = None,
        raise_on_error: bool = True,
    ) -> RunResult:
        """``execute()`` awaited: the run goes on in a thread while the caller's loop runs."""
        caller = sys._getframe(1)
        again = _reentered(caller)  # now, while the caller's stack is whole (see above)
        if again is not None:
            return again
        return await asyncio.to_thread(
            self._run, caller, configuration_file, run_id, tag, parameters_file, parameters, raise_on_error
        )


class _JobExecute(_sdk.Job):
    """What every job adds to its definition here: ``execute()``."""

    def execute(
        self,
        configuration_file: ConfigArg = None,
        job_id: str | None = None,
        tag: str | None = None,
        parameters_file: str | os.PathLike[str] | None = None,
        log_level: str | None = None,
        parameters: Mapping[str, object] | None = None,
        raise_on_error: bool = True,
    ) -> RunResult:
        """Run the job now: a run of one step, recorded (``runs show``), its catalog ``put``
        kept, its returns the run's parameters, exactly as ``Pipeline.execute()`` does
        (``job_id`` is the run's id). A job that fails raises :class:`ExecutionFailedError`,
        unless ``raise_on_error=False``."""
        pipeline = self.as_pipeline()
        assert isinstance(pipeline, Pipeline)
        return pipeline._run(
            sys._getframe(1),
            configuration_file,
            job_id,
            tag,
            parameters_file,
            parameters,
            raise_on_error,
            store_copies=self.store_copy,
        )


class PythonJob(_JobExecute, _sdk.PythonJob):
    """A python function run once as a job (runnable's ``PythonJob``)."""


class NotebookJob(_JobExecute, _sdk.NotebookJob):
    """A notebook executed once as a job (runnable's ``NotebookJob``)."""


class ShellJob(_JobExecute, _sdk.ShellJob):
    """A shell command run once as a job (runnable's ``ShellJob``)."""


#: Variables naming a run for ``execute()`` to resume in place instead of starting a new one
#: (conveyor's, which wins, and runnable's, which its retry examples use).
RETRY_VARIABLES = ("CONVEYOR_RETRY_RUN_ID", "RUNNABLE_RETRY_RUN_ID")


def _retry_variable() -> str | None:
    """The run a retry variable names, for ``execute()`` to resume instead of starting one."""
    return next((os.environ[name] for name in RETRY_VARIABLES if os.environ.get(name)), None)


def _already_succeeded(config: RunConfig, run_id: str) -> RunResult | None:
    """The result of ``run_id`` when it has already succeeded: resuming would skip every
    step, so nothing is run again (as in runnable, whose retry scripts may call
    ``execute()`` once more after the retry that succeeded). None otherwise."""
    try:
        record = open_store(config).load_record(run_id)
    except RunNotFoundError:
        return None  # resuming says so, naming the store
    if record.status is not Status.SUCCEEDED:
        return None
    print(f"conveyor: note: run '{run_id}' already succeeded: nothing to run again", file=sys.stderr)
    params = {**record.initial_parameters, **record.final_parameters}
    return RunResult(run_id=run_id, status=record.status, run=record, parameters=params)


def _importing(frame: FrameType | None) -> str | None:
    """The module whose top level is running on this stack (an import under way), if any:
    a script run as ``__main__`` is not one."""
    while frame is not None:
        if frame.f_code.co_name == "<module>" and frame.f_globals.get("__name__") != "__main__":
            return str(frame.f_globals.get("__name__"))
        frame = frame.f_back
    return None


def _reentered(caller: FrameType) -> RunResult | None:
    """What ``execute()`` returns, without running anything, when it is called again by a
    module's import while conveyor runs a pipeline or a step in this process: the steps of a
    script without a main guard import the script, and its module-level ``execute()`` would
    run the whole pipeline once more, and again for every step. None when not re-entered.
    A deliberate pipeline run inside a step function (no import under way) is not re-entry."""
    run_id = running_run()
    module = _importing(caller) if run_id is not None else None
    if run_id is None or module is None:
        return None
    print(
        f"conveyor: execute() called again by the import of module '{module}' during run "
        f"{run_id or 'in progress'}: not run again (guard the call with "
        '`if __name__ == "__main__":`)',
        file=sys.stderr,
    )
    return RunResult(run_id=run_id, status=Status.RUNNING, run=RunRecord(run_id=run_id))


_sdk.Step.pipeline_class = Pipeline
