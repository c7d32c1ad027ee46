"""The local executor: the whole run in this process; parallel branches and map items on threads.

``isolation: process`` runs each task in a child process instead (a crash or a runaway step
cannot take the run down, and timeouts kill it); ``isolation: pool`` does the same in a few
long-lived processes, one step after another (``conveyor.step.pool``: no interpreter start
per step; what the server runs its steps in).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal

from conveyor.executors.base import Executor
from conveyor.executors.jobs import ThreadJobs
from conveyor.graph.kinds.base import Job
from conveyor.step.capture import Sink
from conveyor.step.launch import LAUNCHERS, in_subprocess
from conveyor.step.request import CommandResult, StepRequest

if TYPE_CHECKING:
    from conveyor.step.pool import RunnerPool


class LocalExecutor(Executor):
    """The embedded default: jobs on threads, commands in threads or child processes."""

    def __init__(
        self,
        max_workers: int | None = None,
        isolation: Literal["thread", "process", "pool"] = "thread",
        stream_output: bool = True,
    ) -> None:
        if isolation not in (*LAUNCHERS, "pool"):
            raise ValueError(f"isolation must be 'thread', 'process' or 'pool', not {isolation!r}")
        if max_workers is not None and (not isinstance(max_workers, int) or max_workers < 1):
            raise ValueError(f"max_workers must be a positive integer, not {max_workers!r}")
        self.max_workers = max_workers or min(32, (os.cpu_count() or 1) + 4)
        self.isolation = isolation
        self.stream_output = stream_output
        self._jobs = ThreadJobs(self.max_workers)
        self._pool: RunnerPool | None = None
        if isolation == "pool":  # imported only then: the pool and its runner are no thread run's cost
            from conveyor.step.pool import RunnerPool

            self._pool = RunnerPool(self.max_workers)
        self._launch = self._pool.launch if self._pool is not None else LAUNCHERS[isolation]

    @property
    def inline(self) -> bool:
        """Whether a step that declares no secrets runs in the engine's own thread (map
        items may then take the engine's lean path)."""
        return self.isolation == "thread"

    def run_jobs(self, jobs: Iterable[Job], count: int, limit: int | None) -> list[bool]:
        return self._jobs.run_jobs(jobs, count, limit)

    def launch(self, request: StepRequest, timeout: float | None, sink: Sink) -> CommandResult:
        if request.secrets and request.node.command_type == "python":
            # Only its own environment holds its secrets; its output is captured at the fds.
            return in_subprocess(request, timeout, sink)
        return self._launch(request, timeout, sink)

    def start_processes(self) -> None:
        """``isolation: pool``: start a step process now, while the engine gets the run
        going. Called once the run's secrets are out of this process's environment (a
        pool process inherits the environment it starts with)."""
        if self._pool is not None:
            self._pool.prestart()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
