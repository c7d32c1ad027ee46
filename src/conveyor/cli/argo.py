"""``conveyor render argo`` and ``conveyor submit --to argo``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from conveyor.cli.errors import EXIT_BAD_INPUT, friendly


def _argo_config(config: Path | None) -> Any:
    from conveyor.executors.argo.executor import ArgoExecutor
    from conveyor.executors.registry import build
    from conveyor.executors.run import with_file
    from conveyor.spec.errors import Issue, SpecError
    from conveyor.spec.load import load_config

    run_config = load_config(config)
    if run_config.executor.type != "argo":
        raise SpecError(
            [
                Issue(
                    "the config does not use the argo executor",
                    file=str(config) if config else None,
                    path=("executor", "type"),
                    expected="'argo'",
                    found=repr(run_config.executor.type),
                    hint="set executor: {type: argo, config: {image: ...}}",
                )
            ],
            "invalid config",
        )
    try:
        executor: ArgoExecutor = build("conveyor.executors", run_config.executor)
    except SpecError as exc:
        raise with_file(exc, str(config) if config else None) from None
    return executor.config


def manifest(file: Path, config: Path | None, params: Path | None, kind: str) -> dict[str, Any]:
    from conveyor.executors.argo.render import Files, render
    from conveyor.spec.load import load_pipeline

    loaded = load_pipeline(file)
    argo = _argo_config(config)
    files = Files(
        pipeline=argo.pipeline_file or str(file),
        config=argo.config_file or (str(config) if config else "config.yaml"),
        parameters=argo.parameters_file or (str(params) if params else None),
    )
    return render(loaded, argo, files, kind)


def dump(doc: dict[str, Any]) -> str:
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, width=1000)


@friendly
def render_argo(
    file: Path, config: Path | None, params: Path | None, output: Path | None, template: bool
) -> int:
    from conveyor.executors.argo.render import RenderError

    try:
        doc = manifest(file, config, params, "WorkflowTemplate" if template else "Workflow")
    except RenderError as exc:
        print(f"conveyor: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    text = dump(doc)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text)
        print(f"wrote {doc['kind']} to {output}", file=sys.stderr)
    return 0
