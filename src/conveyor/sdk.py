"""The SDK as users import it: ``from conveyor import Pipeline, PythonTask``.

The definitions live in ``conveyor.spec.sdk`` (plain data, no I/O); running them needs the
executors, so ``execute`` is added here, above both layers.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from conveyor.executors.run import RunResult
from conveyor.executors.run import execute as _execute
from conveyor.spec import sdk as _sdk
from conveyor.spec.config import RunConfig
from conveyor.spec.load import config_from_data, load_config, load_parameters
from conveyor.spec.sdk import (
    Conditional,
    Fail,
    Map,
    NotebookTask,
    Parallel,
    PythonTask,
    ShellTask,
    Stub,
    Success,
)

__all__ = [
    "Conditional",
    "Fail",
    "Map",
    "NotebookTask",
    "Parallel",
    "Pipeline",
    "PythonTask",
    "RunResult",
    "ShellTask",
    "Stub",
    "Success",
]


class Pipeline(_sdk.Pipeline):
    """A pipeline built in Python that runs here with ``execute()``, or is written out with ``to_yaml()``."""

    def execute(
        self,
        config: RunConfig | Mapping[str, Any] | str | os.PathLike[str] | None = None,
        parameters: Mapping[str, Any] | None = None,
        parameters_file: str | os.PathLike[str] | None = None,
        run_id: str | None = None,
    ) -> RunResult:
        """Run this pipeline here and now; the result carries status, run id and parameters.

        ``config`` is a RunConfig, a mapping in the config format, or a config file path;
        parameters are merged over ``parameters_file`` and ``CONVEYOR_PRM_*`` variables.
        """
        if config is None or isinstance(config, RunConfig):
            run_config = config or RunConfig()
        elif isinstance(config, Mapping):
            run_config = config_from_data(config)
        else:
            run_config = load_config(config)
        params = load_parameters(parameters_file)
        params.update(parameters or {})
        return _execute(self.load(), run_config, params, run_id=run_id)
