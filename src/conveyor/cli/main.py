"""The ``conveyor`` command. Thin: parses options, then calls the layers below.

Imports of the engine are deferred into each command so ``conveyor --help`` stays quick.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="conveyor",
    help="Write a pipeline once; run it in-process, on a server, on Dask or on Argo.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
runs_app = typer.Typer(help="Inspect recorded runs.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")

PipelineOpt = Annotated[Path, typer.Option("--file", "-f", help="The pipeline YAML file.")]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config-file", "--config", "-c", help="The run config YAML.")
]
ParamsOpt = Annotated[
    Path | None, typer.Option("--parameters-file", "--params", "-p", help="Initial parameters YAML.")
]


@app.command()
def execute(
    file: PipelineOpt,
    config: ConfigOpt = None,
    params: ParamsOpt = None,
    run_id: Annotated[str | None, typer.Option("--run-id", help="Name the run (default: generated).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only the final summary.")] = False,
) -> None:
    """Run a pipeline to its end; exit 0 only if it succeeded."""
    from conveyor.cli import commands

    raise typer.Exit(commands.execute(file, config, params, run_id, quiet))


@app.command()
def validate(file: PipelineOpt, config: ConfigOpt = None) -> None:
    """Check a pipeline (and config) and report every problem found."""
    from conveyor.cli import commands

    raise typer.Exit(commands.validate(file, config))


@app.command()
def graph(
    file: PipelineOpt,
    format: Annotated[str, typer.Option("--format", help="mermaid or dot.")] = "mermaid",
) -> None:
    """Print the pipeline as a Mermaid or Graphviz diagram."""
    from conveyor.cli import commands

    raise typer.Exit(commands.graph(file, format))


@app.command()
def retry(
    run_id: Annotated[str, typer.Argument(help="The run to resume.")],
    config: ConfigOpt = None,
    file: Annotated[Path | None, typer.Option("--file", "-f", help="Pipeline file, if moved.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Resume a failed or interrupted run; succeeded steps are not run again."""
    from conveyor.cli import commands

    raise typer.Exit(commands.retry(run_id, config, file, quiet))


@app.command()
def schema() -> None:
    """Print the JSON Schema of the pipeline format."""
    from conveyor.cli import commands

    raise typer.Exit(commands.schema())


@runs_app.command("list")
def runs_list(
    config: ConfigOpt = None,
    limit: Annotated[int, typer.Option("--limit", "-n")] = 20,
) -> None:
    """List recent runs, newest first."""
    from conveyor.cli import inspect

    raise typer.Exit(inspect.list_runs(config, limit))


@runs_app.command("show")
def runs_show(
    run_id: Annotated[str, typer.Argument()],
    config: ConfigOpt = None,
    items: Annotated[int, typer.Option("--items", help="Map items to list per map.")] = 10,
) -> None:
    """Show a run: its steps, statuses, durations and attempts."""
    from conveyor.cli import inspect

    raise typer.Exit(inspect.show_run(run_id, config, items))


@runs_app.command("logs")
def runs_logs(
    run_id: Annotated[str, typer.Argument()],
    step: Annotated[str | None, typer.Argument(help="Step path, e.g. 'fan out/3/process'.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Print the captured output of a run's steps (the last attempt of each)."""
    from conveyor.cli import inspect

    raise typer.Exit(inspect.show_logs(run_id, step, config))


def run() -> None:
    app()
