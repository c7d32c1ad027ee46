"""conveyor: write a pipeline once; run it in-process, on a server, on Dask or on Argo.

The SDK's names (``from conveyor import Pipeline, PythonTask``) are imported on first use, so
that ``import conveyor`` (and the CLI) start quickly; ``conveyor.sdk.__all__`` lists them.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if not name.startswith("_") and name != "sdk":
        import importlib

        sdk = importlib.import_module("conveyor.sdk")
        if name in sdk.__all__:
            return getattr(sdk, name)
    raise AttributeError(f"module 'conveyor' has no attribute {name!r}")
