"""conveyor: write a pipeline once; run it in-process, on a server, on Dask or on Argo.

Names are imported on first use, so that ``import conveyor`` (and the CLI) start quickly.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_SDK = {
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
}


def __getattr__(name: str) -> Any:
    if name in _SDK:
        from conveyor import sdk

        return getattr(sdk, name)
    raise AttributeError(f"module 'conveyor' has no attribute {name!r}")
