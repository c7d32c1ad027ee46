"""The executor interfaces: what the engine needs of an executor, and what a remote one is.

An in-process executor (local, Dask) decides two things only: how independent jobs (map
items, parallel branches) run concurrently, and where one command runs. Traversal, retries,
recording and resume are the engine's, the same for all. A remote executor (Argo) runs
nothing here: it turns the pipeline into something an orchestrator runs, step per pod.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel

from conveyor.graph.kinds.base import Job
from conveyor.step.capture import Sink
from conveyor.step.request import CommandResult, StepRequest


@runtime_checkable
class Executor(Protocol):
    """Runs a pipeline's jobs and commands for the engine, in this process or from it."""

    #: Tasks running at once at most, across nested maps and branches.
    max_workers: int
    #: Whether steps' output is echoed to the console as well as kept.
    stream_output: bool
    #: Where a command runs: ``thread`` (in this process, so what it prints at the file
    #: descriptors must be captured there), ``process`` (a child of this process) or
    #: ``worker`` (another host's process: a Dask worker).
    isolation: str

    def run_jobs(self, jobs: Iterable[Job], count: int, limit: int | None) -> list[bool]:
        """Run ``count`` independent jobs, at most ``limit`` at once; results in job order."""

    def launch(self, request: StepRequest, timeout: float | None, sink: Sink) -> CommandResult:
        """Run one attempt's command (a thread, a child process, a Dask worker); its output
        goes to ``sink``; an exception becomes a failed result, never escapes."""

    def close(self) -> None:
        """Release threads, processes or cluster connections."""


@runtime_checkable
class Configured(Protocol):
    """A backend class (executor, store, catalog, secrets) whose config is a pydantic model:
    the registry validates a config against it without building the backend (``check_only``),
    so a wrong value is reported with its location before anything starts."""

    config_model: ClassVar[type[BaseModel]]


@runtime_checkable
class RemoteExecutor(Protocol):
    """Hands the whole pipeline to an orchestrator; every step then runs in a pod of its
    own as ``conveyor execute-single-node`` (see :mod:`conveyor.executors.pods`)."""

    remote: bool

    def render(self, loaded: Any, files: Any, kind: str = "Workflow") -> Mapping[str, object]:
        """The orchestrator's manifest for ``loaded``, with pods reading ``files``: data,
        written out as YAML (its own types are the orchestrator's: Argo's are TypedDicts)."""
