"""The ``argo`` executor as the registry builds it: its config, checked when built."""

from __future__ import annotations

from typing import Any

from conveyor.executors.argo.config import ArgoConfig


class ArgoExecutor:
    """Runs nothing in this process: pipelines are rendered and submitted to Argo."""

    remote = True
    config_model = ArgoConfig

    def __init__(self, **config: Any) -> None:
        self.config = ArgoConfig.model_validate(config)
