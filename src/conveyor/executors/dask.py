"""The Dask executor (extra ``conveyor[dask]``): steps and map items run as Dask tasks.

The run is driven here, by the same engine as the local executor: traversal, retries and
the run log stay in this process, so every attempt is recorded exactly once, by one writer,
whatever happens to workers. Each task's command is shipped to the cluster with its
parameters (pickled, as for ``isolation: process``); its output comes back with its result.
``max_parallelism`` bounds how many items are in flight, since one driver thread waits on
each. A worker that dies mid-task has its tasks rerun elsewhere by the scheduler.

``config: {address: "tcp://host:8786"}`` joins a running cluster; ``config: {local:
{n_workers: 2, threads_per_worker: 1}}`` starts one on the spot, on loopback.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping

from conveyor.executors.base import Executor
from conveyor.executors.jobs import ThreadJobs
from conveyor.graph.kinds.base import Job
from conveyor.step.capture import Redactor, Sink, capturing, routed
from conveyor.step.commands import run_guarded
from conveyor.step.launch import in_subprocess
from conveyor.step.request import CommandResult, StepRequest


def run_on_worker(request: StepRequest, timeout: float | None) -> tuple[CommandResult, str]:
    """What a Dask worker runs: the command, with its output captured for the driver."""
    if str(request.workdir) not in sys.path:
        sys.path.insert(0, str(request.workdir))
    sink = Sink(Redactor(request.secrets.values()), None)
    with routed(), capturing(sink):
        if request.secrets and request.node.command_type == "python":
            result = in_subprocess(request, timeout, sink)  # secrets only in its own environment
        else:
            result = run_guarded(request, timeout)
    return result, sink.getvalue()


class DaskExecutor(Executor):
    """Commands on a Dask cluster; the driver's threads wait on them, one per job."""

    isolation = "worker"

    def __init__(
        self,
        address: str | None = None,
        local: Mapping[str, object] | None = None,
        max_workers: int | None = None,
        stream_output: bool = True,
    ) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise ValueError("the dask executor needs: pip install 'conveyor[dask]'") from None
        if (address is None) == (local is None):
            raise ValueError(
                "give exactly one of 'address' (a running scheduler) and 'local' (start a cluster)"
            )
        self.cluster = None
        if local is not None:
            options = {
                "n_workers": 2,
                "threads_per_worker": 1,
                "processes": True,
                "host": "127.0.0.1",
                "dashboard_address": None,
                **local,
            }
            self.cluster = LocalCluster(**options)
            address = self.cluster.scheduler_address
        self.client = Client(address, set_as_default=False)
        threads = sum(self.client.nthreads().values()) or 1
        self.max_workers = max_workers or max(4, threads * 2)
        self.stream_output = stream_output
        self._jobs = ThreadJobs(self.max_workers)

    def run_jobs(self, jobs: Iterable[Job], count: int, limit: int | None) -> list[bool]:
        return self._jobs.run_jobs(jobs, count, limit)

    def launch(self, request: StepRequest, timeout: float | None, sink: Sink) -> CommandResult:
        from distributed import TimeoutError as DaskTimeout

        future = self.client.submit(run_on_worker, request, timeout, pure=False, retries=0)
        try:
            result, output = future.result(timeout=None if timeout is None else timeout + 5)
        except DaskTimeout:
            future.cancel()
            return CommandResult(error=f"timed out after {timeout:g}s")
        except Exception as exc:  # a task the cluster could not finish (killed repeatedly)
            return CommandResult(
                error=f"the Dask cluster could not run the step: {type(exc).__name__}: {exc}"
            )
        if output:
            sink.write(output)
        return result

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()
