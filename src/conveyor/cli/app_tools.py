"""``conveyor render ...`` and ``conveyor cache ...``: transpile a pipeline for an orchestrator,
and look after the step cache."""

from pathlib import Path
from typing import Annotated

import typer

from conveyor.cli.options import ConfigOpt, ParamsOpt, PipelineOpt

render_app = typer.Typer(help="Transpile a pipeline for an orchestrator.", no_args_is_help=True)
cache_app = typer.Typer(help="The step cache kept in the catalog.", no_args_is_help=True)


@render_app.command("argo")
def render_argo(
    file: PipelineOpt,
    config: ConfigOpt = None,
    params: ParamsOpt = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here, not to stdout.")] = None,
    template: Annotated[bool, typer.Option("--template", help="Render a WorkflowTemplate.")] = False,
    validate: Annotated[
        bool, typer.Option("--validate", help="Check it against Argo's official schemas (exit 2 if invalid).")
    ] = False,
) -> None:
    """Write an Argo Workflow (CronWorkflow with a schedule, WorkflowTemplate with --template)."""
    from conveyor.cli import argo

    raise typer.Exit(argo.render_argo(file, config, params, output, template, validate))


PipelineFilter = Annotated[str | None, typer.Option("--pipeline", help="Only this pipeline's entries.")]
StepFilter = Annotated[str | None, typer.Option("--step", help="Only this step's entries (its path).")]


@cache_app.command("list")
def cache_list(config: ConfigOpt = None, pipeline: PipelineFilter = None, step: StepFilter = None) -> None:
    """List cache entries, newest first, with their sizes."""
    from conveyor.cli import cache_cmds

    raise typer.Exit(cache_cmds.listing(config, pipeline, step))


@cache_app.command("show")
def cache_show(
    key: Annotated[str, typer.Argument(help="A key, or its first characters.")], config: ConfigOpt = None
) -> None:
    """Show one cache entry."""
    from conveyor.cli import cache_cmds

    raise typer.Exit(cache_cmds.show(config, key))


@cache_app.command("clear")
def cache_clear(
    config: ConfigOpt = None,
    pipeline: PipelineFilter = None,
    step: StepFilter = None,
    older_than: Annotated[
        str | None, typer.Option("--older-than", help="Only entries older than this (7d, 12h).")
    ] = None,
) -> None:
    """Delete cache entries (all, or those chosen) and the files only they used."""
    from conveyor.cli import cache_cmds

    raise typer.Exit(cache_cmds.clear(config, pipeline, step, older_than))
