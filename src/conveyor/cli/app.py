"""The ``conveyor`` command tree (Typer). Thin: parses options, then calls the layers below.

Imports of the engine are deferred into each command so ``conveyor --help`` stays quick.
``conveyor.cli.main.run`` is the entry; it parses a plain ``conveyor execute`` command line
itself (:mod:`conveyor.cli.quick`) and hands every other one to :data:`app`.

The commands a user runs on a pipeline are here; the groups are in modules of their own:
``runs`` (:mod:`conveyor.cli.app_runs`), ``server`` and ``profile``
(:mod:`conveyor.cli.app_server`), ``render`` and ``cache`` (:mod:`conveyor.cli.app_tools`),
and the pods' commands (:mod:`conveyor.cli.app_pods`); shared options in
:mod:`conveyor.cli.options`.
"""

from pathlib import Path
from typing import Annotated

import typer

from conveyor.cli import app_pods, app_runs, app_server, app_tools
from conveyor.cli import params as check
from conveyor.cli.options import (
    ConfigOpt,
    NamespaceOpt,
    ParamOpt,
    ParamsOpt,
    PipelineOpt,
    RunIdOpt,
    ServerOpt,
    TokenOpt,
)

app = typer.Typer(
    name="conveyor",
    help="Write a pipeline once; run it in-process, on a server, on Dask or on Argo.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.add_typer(app_runs.runs_app, name="runs")
app.add_typer(app_tools.render_app, name="render")
app.add_typer(app_tools.cache_app, name="cache")
app.add_typer(app_server.server_app, name="server")
app.add_typer(app_server.profile_app, name="profile")


def _print_version(asked: bool) -> None:
    if asked:
        from importlib.metadata import PackageNotFoundError, version

        try:
            print(f"conveyor {version('conveyor')}")
        except PackageNotFoundError:  # run from a source tree that was never installed
            print("conveyor (version unknown: not installed; pip install -e .)")
        raise typer.Exit(0)


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Options of the ``conveyor`` command itself (the version, read from the package's metadata)."""


@app.command()
def execute(
    file: PipelineOpt,
    config: ConfigOpt = None,
    params: ParamsOpt = None,
    param: ParamOpt = None,
    run_id: RunIdOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only the final summary.")] = False,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Neither look up nor fill the step cache.")
    ] = False,
    refresh_cache: Annotated[
        bool, typer.Option("--refresh-cache", help="Run cached steps again and overwrite their entries.")
    ] = False,
    no_import: Annotated[
        bool, typer.Option("--no-import", help="Do not import step functions to check them before the run.")
    ] = False,
    tag: Annotated[
        list[str] | None,
        typer.Option(
            "--tag",
            help="A tag kept with the run, one (runs list --tag and the UI filter by it).",
            callback=check.one_tag,
        ),
    ] = None,
) -> None:
    """Run a pipeline to its end; exit 0 only if it succeeded."""
    from conveyor.cli import commands

    mode = "off" if no_cache else "refresh" if refresh_cache else "use"
    one = tag[0] if tag else None
    raise typer.Exit(
        commands.execute(file, config, params, run_id, quiet, mode, not no_import, param or [], one)
    )


@app.command()
def validate(
    file: PipelineOpt,
    config: ConfigOpt = None,
    check: Annotated[
        bool, typer.Option("--check", help="Also connect to the config's databases, clusters and stores.")
    ] = False,
    params: ParamsOpt = None,
    no_import: Annotated[
        bool, typer.Option("--no-import", help="Do not import step functions (a machine without the code).")
    ] = False,
    param: ParamOpt = None,
) -> None:
    """Check a pipeline (and config) and report every problem found."""
    from conveyor.cli import commands

    raise typer.Exit(commands.validate(file, config, check, params, not no_import, param or []))


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
    run_id: Annotated[str, typer.Argument(help="The run to resume.", callback=check.run_id)],
    config: ConfigOpt = None,
    file: Annotated[Path | None, typer.Option("--file", "-f", help="Pipeline file, if moved.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only the final summary.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Take over a run whose lease is live (its driver is gone).")
    ] = False,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", hidden=True, help="Refused: a retry keeps the run's recorded parameters."),
    ] = None,
) -> None:
    """Resume a failed or interrupted run; succeeded steps are not run again."""
    from conveyor.cli import commands

    if param:
        from conveyor.errors import ConveyorError

        raise ConveyorError(
            "retry does not take --param: a retry resumes the recorded run with its recorded "
            "parameters, so that its succeeded steps still hold; to change parameters, start a "
            "new run with: conveyor execute -f PIPELINE --param ..."
        )
    raise typer.Exit(commands.retry(run_id, config, file, quiet, force))


@app.command()
def partitions(
    file: PipelineOpt,
    step: Annotated[str, typer.Argument(help="The partitioned map step (a path for nested ones).")],
    params: ParamsOpt = None,
    show: Annotated[int, typer.Option("--show", help="Partitions to list.")] = 5,
) -> None:
    """Preview a partitioned map: partition count, sizes, first items. Runs nothing."""
    from conveyor.cli import commands

    raise typer.Exit(commands.partitions(file, step, params, show))


@app.command()
def schema(
    builtin: Annotated[
        bool,
        typer.Option(
            "--builtin", help="Only the built-in node kinds (the schema conveyor ships), no plugins."
        ),
    ] = False,
) -> None:
    """Print the JSON Schema of the pipeline format, with the node kinds that installed plugins add."""
    from conveyor.cli import commands

    raise typer.Exit(commands.schema(plugins=not builtin))


@app.command()
def submit(
    file: PipelineOpt,
    to: Annotated[str | None, typer.Option("--to", help="argo, or (default) the profile's server.")] = None,
    config: ConfigOpt = None,
    params: ParamsOpt = None,
    param: ParamOpt = None,
    run_id: RunIdOpt = None,
    code: Annotated[
        Path | None, typer.Option("--code", help="A directory of your code to ship along.")
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait for the run to end; exit 0 only on success.")
    ] = False,
    server: ServerOpt = None,
    token: TokenOpt = None,
    namespace: NamespaceOpt = None,
    insecure: Annotated[bool, typer.Option("--insecure", help="Argo: skip TLS verification.")] = False,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet", "-q", help="Print only the run id, and with --wait the final table (no live progress)."
        ),
    ] = False,
    tag: Annotated[
        list[str] | None,
        typer.Option(
            "--tag",
            help="Server: a tag kept with the run (repeatable; listings filter by one).",
            callback=check.tags,
        ),
    ] = None,
) -> None:
    """Submit a pipeline to Argo (--to argo, or a config with the argo executor) or to a
    conveyor server (the profile in force)."""
    from conveyor.errors import ConveyorError

    if to is None and config is not None:
        from conveyor.spec.load import load_config

        to = "argo" if load_config(config).executor.type == "argo" else None
    if to == "argo":
        from conveyor.cli import argo

        if param:
            raise ConveyorError(
                "--param is not passed to Argo: put the values in the parameters file (-p), which "
                "becomes the workflow's arguments, or render the manifest and run 'argo submit -p NAME=VALUE'"
            )
        if tag:
            raise ConveyorError("--tag is kept by a conveyor server: a run submitted to Argo carries no tags")
        raise typer.Exit(argo.submit(file, config, params, run_id, server, token, namespace, insecure, wait))
    if to not in (None, "server"):
        raise ConveyorError(f"cannot submit to {to!r}; use --to argo, or a server profile")
    from conveyor.cli import client_cmds

    profile = client_cmds.profile_in_force(None)
    if profile is None:
        raise ConveyorError(
            "no server profile: add one with 'conveyor profile add NAME --endpoint URL' "
            "(or set CONVEYOR_ENDPOINT), or submit with --to argo"
        )
    raise typer.Exit(
        client_cmds.submit(profile, file, config, params, code, run_id, wait, param or [], quiet, tag or [])
    )


@app.command("ui")
def ui(
    config: ConfigOpt = None,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on.", callback=check.host)
    ] = "127.0.0.1",
    port: Annotated[int, check.port_option("Port to listen on")] = 8401,
) -> None:
    """Open the web UI over the runs the config records (read-only)."""
    from conveyor.cli import ui_cmd

    raise typer.Exit(ui_cmd.serve(config, host, port))


app_pods.register(app)
