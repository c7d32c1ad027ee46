"""``conveyor server ...`` (start, migrate, users, tokens) and ``conveyor profile ...``: run a
conveyor server, and point this CLI at one."""

from typing import Annotated

import typer

from conveyor.cli import params as check
from conveyor.cli.options import DbOpt

server_app = typer.Typer(help="Run and administer a conveyor server.", no_args_is_help=True)
users_app = typer.Typer(help="Server users.", no_args_is_help=True)
server_app.add_typer(users_app, name="users")
tokens_app = typer.Typer(help="Server API tokens.", no_args_is_help=True)
server_app.add_typer(tokens_app, name="tokens")
profile_app = typer.Typer(help="Server profiles for this CLI.", no_args_is_help=True)


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
