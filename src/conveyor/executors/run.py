"""Starting and resuming runs: the one entry point shared by the CLI and the SDK."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conveyor.catalog.store import RecordOnlyPuts
from conveyor.errors import ConveyorError
from conveyor.executors.base import Executor, RemoteExecutor
from conveyor.executors.engine import Engine
from conveyor.executors.registry import build
from conveyor.executors.stream import Subscriber
from conveyor.runlog import base as runlog_base
from conveyor.runlog.base import RunLog, RunLogStore
from conveyor.runlog.endings import Ending, close, settle
from conveyor.runlog.records import RunRecord, Status, check_run_id, new_run_id
from conveyor.spec.config import RunConfig
from conveyor.spec.errors import SpecError
from conveyor.spec.load import LoadedPipeline, load_pipeline
from conveyor.spec.models import Graph, walk_nodes
from conveyor.step.cache import CacheMode, StepCache
from conveyor.step.capture import routed
from conveyor.step.context import StepContext
from conveyor.step.fdcapture import fd_capture


class RunRefused(ConveyorError):
    """A run cannot start or resume as asked (the message says why and what to do)."""


@dataclass
class RunResult:
    """How a run ended, for the CLI and the SDK: its status, final parameters and record."""

    run_id: str
    status: Status
    run: RunRecord
    parameters: dict[str, object] = field(default_factory=dict)
    #: The step paths whose tasks failed (filled in when the run did not succeed).
    failed_steps: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status is Status.SUCCEEDED


def open_store(config: RunConfig) -> RunLogStore:
    """The run log store a config names, or a located config error."""
    try:
        store: RunLogStore = build("conveyor.run_log_stores", config.run_log_store)
    except SpecError as exc:
        raise config.locate(exc) from None
    return store


@dataclass
class Backends:
    """What a config names, built: where runs are recorded, how they run, where files go."""

    store: RunLogStore
    executor: Executor | RemoteExecutor
    catalog: Any
    secrets: Any


def _backends(config: RunConfig, store: RunLogStore | None, store_copies: bool = True) -> Backends:
    try:
        catalog = build("conveyor.catalogs", config.catalog)
        return Backends(
            store=store or open_store(config),
            executor=build("conveyor.executors", config.executor),
            catalog=catalog if store_copies else RecordOnlyPuts(catalog),
            secrets=build("conveyor.secrets", config.secrets),
        )
    except SpecError as exc:
        raise config.locate(exc) from None


def _nested(graph: Graph) -> bool:
    """Whether composites nest (then the executor's max_workers caps tasks across them)."""
    inner = (node for top in graph.steps.values() for sub in top.subgraphs() for node in walk_nodes(sub))
    return any(node.subgraphs() for node in inner)


def _declared(loaded: LoadedPipeline) -> set[str]:
    return {name for node in walk_nodes(loaded.pipeline.dag) for name in getattr(node, "secrets", [])}


def _drive(
    loaded: LoadedPipeline,
    config: RunConfig,
    run: RunRecord,
    parameters: Mapping[str, object],
    backends: Backends,
    previous: RunLog | None,
    subscribers: Sequence[Subscriber],
    capture_fds: bool = False,
    cache: CacheMode = CacheMode.USE,
) -> RunResult:
    """Drive ``run`` to its end with the config's executor (a new run when no ``previous``).
    With ``capture_fds`` (the CLI), what steps running in threads print at the file
    descriptors is captured too (see ``conveyor.step.fdcapture``)."""
    executor = backends.executor
    assert isinstance(executor, Executor)
    workdir = Path(run.workdir or os.getcwd())
    # Functions are found next to the pipeline file and in the working directory. Only a file
    # that is there: a server run's record names the file as its user typed it (a name shown
    # on run pages, never a place to import from).
    pipeline_file = run.pipeline_file or ""
    beside = (
        os.path.dirname(pipeline_file)
        if os.path.isabs(pipeline_file) and os.path.isfile(pipeline_file)
        else ""
    )
    for place in (beside, str(workdir)):
        if place and place not in sys.path:
            sys.path.insert(0, place)
    fds = fd_capture() if capture_fds and executor.isolation == "thread" else nullcontext()
    with fds, routed():
        context = StepContext(
            run.run_id,
            backends.catalog,
            backends.secrets,
            workdir,
            launcher=executor.launch,
            echo=routed.console() if executor.stream_output else None,
        )
        context.cache = StepCache(backends.catalog, loaded.pipeline.dag.cache, cache)
        context.pipeline = loaded.name
        engine = Engine(
            run,
            backends.store,
            context,
            executor.run_jobs,
            previous=previous,
            subscribers=subscribers,
            task_slots=executor.max_workers if _nested(loaded.pipeline.dag) else None,
            lean=getattr(executor, "inline", False) is True,
        )
        # A secret reaches only the steps that declare it (in their own environment): while
        # the run goes, it is not in this process's environment for other steps to read.
        hidden = {name: os.environ.pop(name) for name in _declared(loaded) if name in os.environ}
        try:
            start = getattr(executor, "start_processes", None)
            if callable(start):  # step processes started ahead: only now, without the secrets
                start()
            final = engine.execute(loaded.pipeline, parameters, new=previous is None)
        finally:
            executor.close()
            os.environ.update(hidden)
    params = dict(parameters)
    params.update(final.final_parameters)
    failed = []
    if final.status is not Status.SUCCEEDED:
        steps = backends.store.load(run.run_id).steps
        failed = ["/".join(r.path) for r in steps.values() if r.status is Status.FAILED and r.attempts]
    return RunResult(
        run_id=run.run_id, status=final.status, parameters=params, run=final, failed_steps=failed
    )


def say_notes(config: RunConfig) -> None:
    """Print what reading the config said (runnable keys, and what conveyor does instead)."""
    for note in config.notes:
        print(f"conveyor: note: {note}", file=sys.stderr)


def _still_running(run: RunRecord) -> str:
    where = f"pid {run.pid} on {run.host}" if run.pid else "its orchestrator"
    text = f"run '{run.run_id}' is still running ({where})"
    if run.lease_until is not None:
        left = max(0.0, run.lease_until - time.time())
        when = time.strftime("%H:%M:%S", time.localtime(run.lease_until))
        text += (
            f"; its lease expires at {when} (in {left:.0f}s) unless renewed: retry then, or now with "
            "--force if you know it has stopped"
        )
    return text


def _pipeline_of(run: RunRecord, path: str | None, named: bool) -> LoadedPipeline:
    """The pipeline to resume ``run`` with: the file named on the command line, else the file
    on record if it is still there (so that an edit is noticed), else the definition the run
    log keeps (a pipeline built with the SDK has no file; a YAML file may have moved)."""
    if path and (named or os.path.isfile(path)):
        return load_pipeline(path)
    if run.pipeline and run.pipeline_name:
        from conveyor.spec.load import pipeline_from_located
        from conveyor.spec.yamlload import Located

        recorded = Located(data=run.pipeline, file=f"<run {run.run_id}>")
        return pipeline_from_located(recorded, run.pipeline_name)
    raise RunRefused(f"run '{run.run_id}' has no pipeline file or definition on record; pass it with -f")


def _where(file: str | None) -> str | None:
    """A pipeline file's absolute path; a name such as ``<sdk:name>`` (no file) as it is."""
    return None if not file else file if file.startswith("<") else os.path.abspath(file)


def new_run_record(
    run_id: str,
    loaded: LoadedPipeline,
    config: RunConfig,
    config_file: str | None,
    params: Mapping[str, object],
) -> RunRecord:
    """The record a run starts with, whoever drives it (this process, or an orchestrator)."""
    return RunRecord(
        run_id=run_id,
        pipeline_name=loaded.name,
        pipeline_file=_where(loaded.file),
        pipeline_hash=loaded.hash,
        pipeline=loaded.data,
        config=config.model_dump(mode="json"),
        config_file=os.path.abspath(config_file) if config_file else None,
        status=Status.RUNNING,
        started_at=time.time(),
        initial_parameters=dict(params),
        pid=os.getpid(),
        host=os.uname().nodename,
        workdir=os.getcwd(),
    )


def _refuse_remote(executor: Executor | RemoteExecutor, config: RunConfig) -> None:
    if isinstance(executor, RemoteExecutor):
        kind = config.executor.type
        raise RunRefused(
            f"executor '{kind}' does not run pipelines in this process: render it with "
            f"'conveyor render {kind} -f PIPELINE -c CONFIG' or submit it with "
            f"'conveyor submit --to {kind} -f PIPELINE -c CONFIG'"
        )


def execute(
    loaded: LoadedPipeline,
    config: RunConfig | None = None,
    parameters: Mapping[str, object] | None = None,
    run_id: str | None = None,
    subscribers: Sequence[Subscriber] = (),
    store: RunLogStore | None = None,
    config_file: str | None = None,
    capture_fds: bool = False,
    tag: str | None = None,
    cache: CacheMode = CacheMode.USE,
    store_copies: bool = True,
) -> RunResult:
    """Start a new run of ``loaded`` and drive it to its end (``tag`` is kept in its record).
    A config from runnable's
    ``retry`` executor resumes the run it names instead. Without ``store_copies``, files
    the steps put are recorded with their hash but not copied (runnable's ``store_copy``)."""
    config = config or RunConfig()
    say_notes(config)
    if config.retry_of:
        return resume(
            config.retry_of,
            config,
            subscribers=subscribers,
            store=store,
            capture_fds=capture_fds,
            loaded=loaded,
            cache=cache,
            store_copies=store_copies,
        )
    backends = _backends(config, store, store_copies)
    _refuse_remote(backends.executor, config)
    run_id = run_id or new_run_id()
    try:
        check_run_id(run_id)
    except ValueError as exc:
        raise RunRefused(str(exc)) from None
    params = dict(parameters or {})
    run = new_run_record(run_id, loaded, config, config_file, params)
    if tag:
        run.extra["tag"] = tag
    return _drive(loaded, config, run, params, backends, None, subscribers, capture_fds, cache)


def resume(
    run_id: str,
    config: RunConfig | None = None,
    pipeline_file: str | None = None,
    subscribers: Sequence[Subscriber] = (),
    store: RunLogStore | None = None,
    force: bool = False,
    capture_fds: bool = False,
    loaded: LoadedPipeline | None = None,
    cache: CacheMode = CacheMode.USE,
    store_copies: bool = True,
) -> RunResult:
    """Resume a failed or interrupted run: succeeded steps and map items are not run again.

    A run whose lease is live is refused (its driver may be running it), unless ``force``:
    for when you know its driver is gone and will not wait for the lease to expire."""
    config = config or RunConfig()
    backends = _backends(config, store, store_copies)
    _refuse_remote(backends.executor, config)
    previous = settle(backends.store.load(run_id))  # its open steps ended with it
    status = previous.status
    if status is Status.RUNNING and force:  # its driver is gone, you say: so is what it ran
        previous.closed = close(previous.steps.values(), Ending(Status.INTERRUPTED, time.time()))
    if status is Status.SUCCEEDED:
        raise RunRefused(f"run '{run_id}' already succeeded; there is nothing to retry")
    if status is Status.RUNNING and not force:
        raise RunRefused(_still_running(previous.run))
    path = pipeline_file or (loaded.file if loaded else None) or previous.run.pipeline_file
    if loaded is None:
        loaded = _pipeline_of(previous.run, path, pipeline_file is not None)
    if loaded.hash != previous.run.pipeline_hash:
        again = (
            "run the script again without a retry variable"
            if str(path).startswith("<")
            else "conveyor execute -f " + str(path)
        )
        raise RunRefused(
            f"the pipeline {path} has changed since run '{run_id}' started, so its recorded steps "
            f"no longer describe it. Start a new run: {again}"
        )
    run = previous.run
    expected = run.generation
    run.status, run.ended_at, run.error = Status.RUNNING, None, None
    run.pid, run.host = os.getpid(), os.uname().nodename
    run.lease_until = time.time() + runlog_base.LEASE_SECONDS
    run.resumed += 1
    # One atomic claim: of any number of concurrent retries (or a retry and the server's
    # reclaim), one takes the run over; the others see it running under the winner.
    if not backends.store.claim(run, expected):
        raise RunRefused(
            f"run '{run_id}' was taken over by another process at the same time: "
            + _still_running(backends.store.load_record(run_id))
        )
    # What was recorded up to the claim (a driver taken over by --force may have written since),
    # with the steps the earlier driver left open still to be closed as it ended.
    closed = previous.closed
    previous = backends.store.load(run_id)
    previous.closed = closed
    params = dict(run.initial_parameters)
    return _drive(loaded, config, run, params, backends, previous, subscribers, capture_fds, cache)
