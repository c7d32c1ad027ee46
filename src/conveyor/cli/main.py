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
render_app = typer.Typer(help="Transpile a pipeline for an orchestrator.", no_args_is_help=True)
app.add_typer(render_app, name="render")

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


ServerOpt = Annotated[str | None, typer.Option("--server", help="Argo Server (default: $ARGO_SERVER).")]
TokenOpt = Annotated[str | None, typer.Option("--token", help="Bearer token (default: $ARGO_TOKEN).")]
NamespaceOpt = Annotated[str | None, typer.Option("--namespace", "-n", help="Kubernetes namespace.")]


@runs_app.command("logs")
def runs_logs(
    run_id: Annotated[str, typer.Argument()],
    step: Annotated[str | None, typer.Argument(help="Step path, e.g. 'fan out/3/process'.")] = None,
    config: ConfigOpt = None,
    server: ServerOpt = None,
    token: TokenOpt = None,
) -> None:
    """Print the captured output of a run's steps (pod logs for Argo runs)."""
    from conveyor.cli import remote

    raise typer.Exit(remote.logs(run_id, step, config, server, token))


@runs_app.command("status")
def runs_status(
    run_id: Annotated[str, typer.Argument()],
    config: ConfigOpt = None,
    server: ServerOpt = None,
    token: TokenOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """A run's status: the run log, and the workflow's nodes for Argo runs."""
    from conveyor.cli import remote

    raise typer.Exit(remote.status(run_id, config, server, token, namespace))


@runs_app.command("stop")
def runs_stop(
    run_id: Annotated[str, typer.Argument()],
    config: ConfigOpt = None,
    server: ServerOpt = None,
    token: TokenOpt = None,
) -> None:
    """Stop an Argo run (its exit handler still records the final status)."""
    from conveyor.cli import remote

    raise typer.Exit(remote.act(run_id, "stop", config, server, token))


@runs_app.command("retry")
def runs_retry(
    run_id: Annotated[str, typer.Argument()],
    config: ConfigOpt = None,
    server: ServerOpt = None,
    token: TokenOpt = None,
) -> None:
    """Retry a failed run: Argo retries its failed nodes; a local run resumes."""
    from conveyor.cli import remote

    raise typer.Exit(remote.act(run_id, "retry", config, server, token))


@app.command()
def submit(
    file: PipelineOpt,
    to: Annotated[str, typer.Option("--to", help="Where to submit: argo.")] = "argo",
    config: ConfigOpt = None,
    params: ParamsOpt = None,
    run_id: Annotated[str | None, typer.Option("--run-id")] = None,
    server: ServerOpt = None,
    token: TokenOpt = None,
    namespace: NamespaceOpt = None,
    insecure: Annotated[bool, typer.Option("--insecure", help="Skip TLS verification.")] = False,
) -> None:
    """Submit a pipeline to an orchestrator (Argo Workflows)."""
    from conveyor.cli import argo

    if to != "argo":
        typer.echo(f"conveyor: cannot submit to {to!r}; supported: argo", err=True)
        raise typer.Exit(2)
    raise typer.Exit(argo.submit(file, config, params, run_id, server, token, namespace, insecure))


RunIdArg = Annotated[str, typer.Argument(help="The run id.")]
StepArg = Annotated[str, typer.Argument(help="The step path, parts joined by '/' (map items by index).")]


@render_app.command("argo")
def render_argo(
    file: PipelineOpt,
    config: ConfigOpt = None,
    params: ParamsOpt = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here, not to stdout.")] = None,
    template: Annotated[bool, typer.Option("--template", help="Render a WorkflowTemplate.")] = False,
) -> None:
    """Write an Argo Workflow (CronWorkflow with a schedule, WorkflowTemplate with --template)."""
    from conveyor.cli import argo

    raise typer.Exit(argo.render_argo(file, config, params, output, template))


@app.command("run-start", hidden=True)
def run_start(
    run_id: Annotated[str | None, typer.Argument()] = None,
    file: PipelineOpt = Path("pipeline.yaml"),
    config: ConfigOpt = None,
    params: ParamsOpt = None,
) -> None:
    """Record a run that an orchestrator drives step by step."""
    from conveyor.cli import nodes

    raise typer.Exit(nodes.run_start(run_id, file, config, params))


@app.command("execute-single-node")
def execute_single_node(run_id: RunIdArg, step: StepArg, file: PipelineOpt, config: ConfigOpt = None) -> None:
    """Run exactly one step of a run (one map item's step), as a pod does."""
    from conveyor.cli import nodes

    raise typer.Exit(nodes.execute_single_node(run_id, step, file, config))


@app.command("fan-out", hidden=True)
def fan_out(run_id: RunIdArg, step: StepArg, file: PipelineOpt, config: ConfigOpt = None) -> None:
    """Record a map's items and print their count."""
    from conveyor.cli import nodes

    raise typer.Exit(nodes.fan_out(run_id, step, file, config))


@app.command("fan-in", hidden=True)
def fan_in(run_id: RunIdArg, step: StepArg, file: PipelineOpt, config: ConfigOpt = None) -> None:
    """Reduce a map's items and record its outcome."""
    from conveyor.cli import nodes

    raise typer.Exit(nodes.fan_in(run_id, step, file, config))


@app.command("run-end", hidden=True)
def run_end(
    run_id: RunIdArg,
    status: Annotated[str, typer.Option("--status", help="The orchestrator's final phase.")],
    file: PipelineOpt,
    config: ConfigOpt = None,
) -> None:
    """Record a run's final status (an Argo exit handler)."""
    from conveyor.cli import nodes

    raise typer.Exit(nodes.run_end(run_id, status, file, config))


def run() -> None:
    app()
