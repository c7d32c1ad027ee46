"""Helpers for testing pipelines with pytest: run a pipeline file in this process with an
in-memory run log, then assert on what each step did.

A pipeline's tests should exercise the same engine as production runs, not a stand-in, yet
leave nothing behind: :func:`run_pipeline` runs the file exactly as ``conveyor execute``
would (same loading, validation, traversal and step execution), but records the run in a
:class:`~conveyor.runlog.memory.MemoryRunLogStore` it keeps, so that the returned
:class:`PipelineRun` can show every step's status, returns, metrics and output::

    from conveyor.testing import run_pipeline

    def test_pipeline(tmp_path):
        run = run_pipeline("pipelines/etl.yaml", {"size": 3}, cwd=tmp_path)
        run.assert_succeeded()
        assert run.parameters["total"] == 6
        assert run.metrics("count") == {"rows": 3}
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from conveyor.executors.run import RunResult, execute
from conveyor.jsontypes import JSONObject
from conveyor.runlog.base import RunLog
from conveyor.runlog.memory import MemoryRunLogStore
from conveyor.runlog.records import Attempt, Status, StepRecord
from conveyor.spec.config import RunConfig
from conveyor.spec.load import config_from_data, load_config, load_parameters, load_pipeline

__all__ = ["PipelineRun", "run_pipeline"]

StepPath = str | Sequence[str]


def _key(path: StepPath) -> tuple[str, ...]:
    return tuple(path.split("/")) if isinstance(path, str) else tuple(path)


@dataclass
class PipelineRun:
    """A finished test run: its result (status, final parameters) and its whole run log.

    Steps are named by their path, as ``conveyor runs show`` prints them: ``"total"`` for a
    top-level step, ``"fan/2/work"`` (or ``("fan", "2", "work")``) inside a map's item 2.
    """

    result: RunResult
    log: RunLog
    store: MemoryRunLogStore

    @property
    def status(self) -> Status:
        """How the run ended (``Status.SUCCEEDED``, ``Status.FAILED``...)."""
        return self.result.status

    @property
    def ok(self) -> bool:
        """Whether the run succeeded."""
        return self.result.ok

    @property
    def parameters(self) -> dict[str, object]:
        """The parameters at the end of the run: the initial ones plus every step's returns
        (``object`` returns as the Python objects they are)."""
        return self.result.parameters

    @property
    def failed_steps(self) -> list[str]:
        """The paths of the tasks that failed, ``/``-joined."""
        return self.result.failed_steps

    def step(self, path: StepPath) -> StepRecord:
        """The run log's record of one step; a KeyError naming the recorded paths if none."""
        record = self.log.step(_key(path))
        if record is None:
            known = ", ".join("/".join(k) for k in sorted(self.log.steps)) or "none"
            name = "/".join(_key(path))
            raise KeyError(f"no step {name!r} in run {self.result.run_id} (recorded: {known})")
        return record

    def _last(self, path: StepPath) -> Attempt:
        attempt = self.step(path).last
        if attempt is None:
            raise KeyError(f"step {'/'.join(_key(path))!r} has no attempt (it is not a task)")
        return attempt

    def returns(self, path: StepPath) -> JSONObject:
        """The JSON returns of a task's last attempt, by name."""
        return dict(self._last(path).returns)

    def metrics(self, path: StepPath) -> JSONObject:
        """The metrics of a task's last attempt, by name."""
        return dict(self._last(path).metrics)

    def output(self, path: StepPath) -> str:
        """What a task's last attempt printed (its captured log), or ``""``."""
        location = self._last(path).log
        return self.store.read_log(location) if location else ""

    def assert_succeeded(self) -> None:
        """Fail the test, naming each failed step and its error, unless the run succeeded."""
        if self.ok:
            return
        lines = [f"run {self.result.run_id} {self.status.value}"]
        for name in self.failed_steps:
            attempt = self.step(name).last
            error = attempt.error if attempt is not None else None
            lines.append(f"  {name}: {error or 'failed'}")
        raise AssertionError("\n".join(lines))


@contextmanager
def _working_directory(cwd: str | os.PathLike[str] | None) -> Iterator[None]:
    if cwd is None:
        yield
        return
    before = os.getcwd()
    os.chdir(cwd)
    try:
        yield
    finally:
        os.chdir(before)


def _config(config: RunConfig | Mapping[str, object] | str | os.PathLike[str] | None) -> RunConfig:
    if config is None or isinstance(config, RunConfig):
        return config or RunConfig()
    if isinstance(config, Mapping):
        return config_from_data(config)
    return load_config(Path(config).resolve())


def run_pipeline(
    pipeline_file: str | os.PathLike[str],
    parameters: Mapping[str, object] | None = None,
    *,
    config: RunConfig | Mapping[str, object] | str | os.PathLike[str] | None = None,
    parameters_file: str | os.PathLike[str] | None = None,
    run_id: str | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> PipelineRun:
    """Run a pipeline file to its end in this process, recorded in memory, and return it.

    ``parameters`` are merged over ``parameters_file``; ``CONVEYOR_PRM_*`` variables are
    ignored, so a test does not depend on the environment it runs in. ``config`` (a file,
    a mapping in the config format, or a RunConfig) chooses the executor, catalog and
    secrets; its run log store is replaced by the in-memory one. ``cwd`` is the working
    directory for the run (steps' relative files, catalog patterns): pass pytest's
    ``tmp_path`` to keep the repository clean. A failed run is returned, not raised: call
    :meth:`PipelineRun.assert_succeeded`, or assert on ``status`` and ``failed_steps``.
    Invalid pipelines, configs and parameters raise ``conveyor.spec.errors.SpecError``.
    """
    pipeline_path = Path(pipeline_file).resolve()
    params_path = Path(parameters_file).resolve() if parameters_file is not None else None
    loaded = load_pipeline(pipeline_path)
    run_config = _config(config)
    params: dict[str, object] = {**load_parameters(params_path, environ={}), **(parameters or {})}
    store = MemoryRunLogStore()
    with _working_directory(cwd):
        result = execute(loaded, run_config, params, run_id=run_id, store=store)
    return PipelineRun(result=result, log=store.load(result.run_id), store=store)
