"""``conveyor runs ...``: inspect and act on recorded runs, wherever they are (the profile's
server, an Argo Server, or the local run log)."""

from typing import Annotated

import typer

from conveyor.cli import params as check
from conveyor.cli.options import ConfigOpt, NamespaceOpt, ParamOpt, ParamsOpt, RunIdArg, ServerOpt, TokenOpt

runs_app = typer.Typer(help="Inspect recorded runs.", no_args_is_help=True)


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
    """Cancel a run on the profile's server (a running run is stopped, with its processes), or
    stop an Argo run's workflow (its run log then says cancelled)."""
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
    """Stop an Argo run: its exit handler still runs and records the run as cancelled."""
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
