"""The ``conveyor`` command tree (Typer). Thin: parses options, then calls the layers below.

Imports of the engine are deferred into each command so ``conveyor --help`` stays quick.
``conveyor.cli.main.run`` is the entry; it parses a plain ``conveyor execute`` command line
itself (:mod:`conveyor.cli.quick`) and hands every other one to :data:`app`.
"""

from pathlib import Path
from typing import Annotated

import typer

from conveyor.cli import params as check

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
cache_app = typer.Typer(help="The step cache kept in the catalog.", no_args_is_help=True)
app.add_typer(cache_app, name="cache")
server_app = typer.Typer(help="Run and administer a conveyor server.", no_args_is_help=True)
app.add_typer(server_app, name="server")
users_app = typer.Typer(help="Server users.", no_args_is_help=True)
server_app.add_typer(users_app, name="users")
tokens_app = typer.Typer(help="Server API tokens.", no_args_is_help=True)
server_app.add_typer(tokens_app, name="tokens")
profile_app = typer.Typer(help="Server profiles for this CLI.", no_args_is_help=True)
app.add_typer(profile_app, name="profile")


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


DbOpt = Annotated[str | None, typer.Option("--db", help="Database URL (default: SQLite in the data dir).")]

PipelineOpt = Annotated[Path, typer.Option("--file", "-f", help="The pipeline YAML file.")]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config-file", "--config", "-c", help="The run config YAML.")
]
ParamsOpt = Annotated[
    Path | None, typer.Option("--parameters-file", "--params", "-p", help="Initial parameters YAML.")
]
RunIdArg = Annotated[str, typer.Argument(help="The run id.", callback=check.run_id)]
RunIdOpt = Annotated[
    str | None, typer.Option("--run-id", help="Name the run (default: generated).", callback=check.new_run_id)
]
ParamOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--param",
        help="A parameter as NAME=VALUE, the value read as YAML (3 a number, [1, 2] a list); "
        "repeatable; wins over -p and CONVEYOR_PRM_ values.",
    ),
]


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
        str | None,
        typer.Option(
            "--tag",
            help="A tag kept with the run (runs list --tag and the UI filter by it).",
            callback=check.tag,
        ),
    ] = None,
) -> None:
    """Run a pipeline to its end; exit 0 only if it succeeded."""
    from conveyor.cli import commands

    mode = "off" if no_cache else "refresh" if refresh_cache else "use"
    raise typer.Exit(
        commands.execute(file, config, params, run_id, quiet, mode, not no_import, param or [], tag)
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


@runs_app.command("list")
def runs_list(
    config: ConfigOpt = None,
    limit: Annotated[int, typer.Option("--limit", "-n")] = 20,
    status: Annotated[
        str | None, typer.Option("--status", help="Only runs with this status.", callback=check.text)
    ] = None,
    user: Annotated[
        str | None, typer.Option("--user", help="Server runs: filter by user.", callback=check.text)
    ] = None,
    pipeline: Annotated[
        str | None, typer.Option("--pipeline", help="Only this pipeline's runs.", callback=check.text)
    ] = None,
    tag: Annotated[
        str | None, typer.Option("--tag", help="Only runs with this tag.", callback=check.text)
    ] = None,
) -> None:
    """List recent runs, newest first (on the profile's server, or in the local run log)."""
    from conveyor.cli import client_cmds, inspect

    profile = client_cmds.profile_in_force(config)
    if profile is not None:
        raise typer.Exit(client_cmds.listing(profile, status, user, pipeline, limit, tag))
    raise typer.Exit(inspect.list_runs(config, limit, status, pipeline, tag, user))


@runs_app.command("show")
def runs_show(
    run_id: RunIdArg,
    config: ConfigOpt = None,
    items: Annotated[int, typer.Option("--items", help="Map items to list per map.")] = 10,
) -> None:
    """Show a run: its steps, statuses, durations and attempts (on the profile's server, or in
    the local run log)."""
    from conveyor.cli import client_cmds, inspect

    profile = client_cmds.profile_in_force(config)
    if profile is not None:
        raise typer.Exit(client_cmds.status(profile, run_id, False))
    raise typer.Exit(inspect.show_run(run_id, config, items))


ServerOpt = Annotated[
    str | None, typer.Option("--server", help="Argo Server (default: $ARGO_SERVER).", callback=check.url)
]
TokenOpt = Annotated[
    str | None, typer.Option("--token", help="Bearer token (default: $ARGO_TOKEN).", callback=check.token)
]
NamespaceOpt = Annotated[
    str | None, typer.Option("--namespace", "-n", help="Kubernetes namespace.", callback=check.namespace)
]


@runs_app.command("logs")
def runs_logs(
    run_id: RunIdArg,
    step: Annotated[
        str | None, typer.Argument(help="Step path, e.g. 'fan out/3/process'.", callback=check.text)
    ] = None,
    config: ConfigOpt = None,
    server: ServerOpt = None,
    token: TokenOpt = None,
) -> None:
    """Print the captured output of a run's steps (pod logs for Argo runs)."""
    from conveyor.cli import client_cmds, remote

    profile = client_cmds.profile_in_force(config)
    if profile is not None:
        raise typer.Exit(client_cmds.logs(profile, run_id, step))
    raise typer.Exit(remote.logs(run_id, step, config, server, token))


@runs_app.command("status")
def runs_status(
    run_id: RunIdArg,
    config: ConfigOpt = None,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Redraw until the run ends.")] = False,
    server: ServerOpt = None,
    token: TokenOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """A run's status: from the profile's server, the Argo Server, or the local run log."""
    from conveyor.cli import client_cmds, remote

    profile = client_cmds.profile_in_force(config)
    if profile is not None:
        raise typer.Exit(client_cmds.status(profile, run_id, watch))
    raise typer.Exit(remote.status(run_id, config, server, token, namespace))


@runs_app.command("cancel")
def runs_cancel(run_id: RunIdArg, config: ConfigOpt = None) -> None:
    """Cancel a run on the profile's server (a running run is stopped, with its processes)."""
    from conveyor.cli import client_cmds, remote

    profile = client_cmds.profile_in_force(config)
    if profile is not None:
        raise typer.Exit(client_cmds.action(profile, run_id, "cancel"))
    raise typer.Exit(remote.act(run_id, "stop", config, None, None))


@runs_app.command("stop")
def runs_stop(
    run_id: RunIdArg,
    config: ConfigOpt = None,
    server: ServerOpt = None,
    token: TokenOpt = None,
) -> None:
    """Stop an Argo run (its exit handler still records the final status)."""
    from conveyor.cli import remote

    raise typer.Exit(remote.act(run_id, "stop", config, server, token))


@runs_app.command("rerun")
def runs_rerun(
    run_id: RunIdArg,
    params: ParamsOpt = None,
    param: ParamOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the new run's id.")] = False,
) -> None:
    """Run a server run's pipeline again as a new run, with its parameters changed by -p and
    --param (the run page's "Re-run with parameters…"); prints the new run's id."""
    from conveyor.cli import client_cmds

    raise typer.Exit(client_cmds.rerun_command(run_id, params, param or [], quiet))


@runs_app.command("retry")
def runs_retry(
    run_id: RunIdArg,
    config: ConfigOpt = None,
    server: ServerOpt = None,
    token: TokenOpt = None,
) -> None:
    """Retry a failed run: on a server it is queued again and resumes; Argo retries its failed
    nodes; a local run resumes here."""
    from conveyor.cli import client_cmds, remote

    profile = client_cmds.profile_in_force(config)
    if profile is not None:
        raise typer.Exit(client_cmds.action(profile, run_id, "retry"))
    raise typer.Exit(remote.act(run_id, "retry", config, server, token))


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


StepArg = Annotated[str, typer.Argument(help="The step path, parts joined by '/' (map items by index).")]


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


@app.command("run-start", hidden=True)
def run_start(
    run_id: Annotated[str | None, typer.Argument(callback=check.new_run_id)] = None,
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


@app.command("kind-verb", hidden=True)
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


@server_app.command("start")
def server_start(
    db: DbOpt = None,
    host: Annotated[str, typer.Option("--host", callback=check.host)] = "127.0.0.1",
    port: Annotated[int, check.port_option("Port to listen on")] = 8400,
    workers: Annotated[
        int, typer.Option("--workers", help="Run worker processes.", callback=check.at_least(0))
    ] = 2,
    api_workers: Annotated[
        int,
        typer.Option("--api-workers", help="HTTP worker processes.", callback=check.at_least(1)),
    ] = 1,
) -> None:
    """Serve the HTTP API and run queued pipelines (migrations are applied first)."""
    from conveyor.cli import server_cmds

    raise typer.Exit(server_cmds.start(db, host, port, workers, api_workers))


@server_app.command("migrate")
def server_migrate(db: DbOpt = None) -> None:
    """Apply the database migrations."""
    from conveyor.cli import server_cmds

    raise typer.Exit(server_cmds.migrate(db))


@server_app.command("worker", hidden=True)
def server_worker(db: DbOpt = None, once: Annotated[bool, typer.Option("--once")] = False) -> None:
    """Claim and run queued runs (started by 'server start')."""
    from conveyor.cli import server_cmds

    raise typer.Exit(server_cmds.worker(db, once))


@users_app.command("create")
def users_create(
    name: Annotated[str, typer.Argument()],
    db: DbOpt = None,
    admin: Annotated[bool, typer.Option("--admin")] = False,
) -> None:
    """Create a user (an admin sees and acts on every run)."""
    from conveyor.cli import server_cmds

    raise typer.Exit(server_cmds.users_create(db, name, admin))


@tokens_app.command("create")
def tokens_create(name: Annotated[str, typer.Argument(help="The user.")], db: DbOpt = None) -> None:
    """Create a token for a user and print it, once."""
    from conveyor.cli import server_cmds

    raise typer.Exit(server_cmds.tokens_create(db, name))


@tokens_app.command("revoke")
def tokens_revoke(
    token: Annotated[str, typer.Argument(help="The token, or its id.")], db: DbOpt = None
) -> None:
    """Revoke a token."""
    from conveyor.cli import server_cmds

    raise typer.Exit(server_cmds.tokens_revoke(db, token))


@tokens_app.command("list")
def tokens_list(name: Annotated[str, typer.Argument(help="The user.")], db: DbOpt = None) -> None:
    """List a user's tokens (ids and whether revoked)."""
    from conveyor.cli import server_cmds

    raise typer.Exit(server_cmds.tokens_list(db, name))


@profile_app.command("add")
def profile_add(
    name: Annotated[str, typer.Argument()],
    endpoint: Annotated[str, typer.Option("--endpoint", help="The server URL.", callback=check.url)],
    token: Annotated[str | None, typer.Option("--token", callback=check.token)] = None,
) -> None:
    """Add (or replace) a profile; the first one becomes current."""
    from conveyor.cli import client_cmds

    raise typer.Exit(client_cmds.profile_cmd("add", name, endpoint, token))


@profile_app.command("list")
def profile_list() -> None:
    """List profiles; the current one is marked."""
    from conveyor.cli import client_cmds

    raise typer.Exit(client_cmds.profile_cmd("list"))


@profile_app.command("use")
def profile_use(name: Annotated[str, typer.Argument()]) -> None:
    """Make a profile current."""
    from conveyor.cli import client_cmds

    raise typer.Exit(client_cmds.profile_cmd("use", name))


@profile_app.command("show")
def profile_show() -> None:
    """Show the profile in force (token masked)."""
    from conveyor.cli import client_cmds

    raise typer.Exit(client_cmds.profile_cmd("show"))


@profile_app.command("remove")
def profile_remove(name: Annotated[str, typer.Argument()]) -> None:
    """Remove a profile."""
    from conveyor.cli import client_cmds

    raise typer.Exit(client_cmds.profile_cmd("remove", name))
