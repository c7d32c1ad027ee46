"""The commands an orchestrator's pods run (Argo's containers): record a run's start and end,
run one step, do a node kind's verb. Registered on the root command by :mod:`conveyor.cli.app`;
only ``execute-single-node`` is listed in the help, the others are hidden."""

from pathlib import Path
from typing import Annotated

import typer

from conveyor.cli import params as check
from conveyor.cli.options import ConfigOpt, ParamsOpt, PipelineOpt, RunIdArg, StepArg


def register(app: typer.Typer) -> None:
    """Add the pod commands to ``app`` (the root command, which they belong to)."""
    app.command("run-start", hidden=True)(run_start)
    app.command("execute-single-node")(execute_single_node)
    app.command("kind-verb", hidden=True)(kind_verb)
    app.command("run-end", hidden=True)(run_end)


def run_start(
    run_id: Annotated[str | None, typer.Argument(callback=check.new_run_id)] = None,
    file: PipelineOpt = Path("pipeline.yaml"),
    config: ConfigOpt = None,
    params: ParamsOpt = None,
) -> None:
    """Record a run that an orchestrator drives step by step."""
    from conveyor.cli import nodes

    raise typer.Exit(nodes.run_start(run_id, file, config, params))


def execute_single_node(run_id: RunIdArg, step: StepArg, file: PipelineOpt, config: ConfigOpt = None) -> None:
    """Run exactly one step of a run (one map item's step), as a pod does."""
    from conveyor.cli import nodes

    raise typer.Exit(nodes.execute_single_node(run_id, step, file, config))


def kind_verb(
    verb: Annotated[str, typer.Argument(help="The verb: fan-out, fan-in (a map), loop-check (LOOP/N).")],
    run_id: RunIdArg,
    step: StepArg,
    file: PipelineOpt,
    config: ConfigOpt = None,
) -> None:
    """Do a node kind's orchestrator-side verb for STEP (a map's fan-out and fan-in, a loop's
    loop-check after iteration N of LOOP/N)."""
    from conveyor.cli import nodes

    raise typer.Exit(nodes.kind_verb(verb, run_id, step, file, config))


def run_end(
    run_id: RunIdArg,
    status: Annotated[str, typer.Option("--status", help="The orchestrator's final phase.")],
    file: PipelineOpt,
    config: ConfigOpt = None,
) -> None:
    """Record a run's final status (an Argo exit handler)."""
    from conveyor.cli import nodes

    raise typer.Exit(nodes.run_end(run_id, status, file, config))
