"""The ``argo`` executor as the registry builds it: its config, checked when built."""

from __future__ import annotations

from typing import Any

from conveyor.executors.argo.config import ArgoConfig
from conveyor.executors.argo.manifest import KINDS, Manifest


class ArgoExecutor:
    """Runs nothing in this process: pipelines are rendered and submitted to Argo
    (a :class:`~conveyor.executors.base.RemoteExecutor`)."""

    remote = True
    config_model = ArgoConfig

    def __init__(self, **config: Any) -> None:
        self.config = ArgoConfig.model_validate(config)

    def render(self, loaded: Any, files: Any, kind: str = "Workflow", parameters: Any = None) -> Manifest:
        """The Workflow (CronWorkflow with a schedule, or WorkflowTemplate) for ``loaded``,
        with ``parameters`` as its arguments (the defaults a submitter can change)."""
        from conveyor.executors.argo.render import RenderError, render

        if kind not in KINDS:
            raise RenderError(f"cannot render a {kind!r}: the kinds are {', '.join(KINDS)}")
        return render(loaded, self.config, files, KINDS[kind], parameters)
