"""``conveyor profile ...`` and the server side of ``submit`` and ``runs ...``."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.table import Table

from conveyor.cli.errors import EXIT_BAD_INPUT, EXIT_FAILED, friendly
from conveyor.cli.richconsole import Console
from conveyor.cli.style import coloured
from conveyor.errors import ConveyorError
from conveyor.runlog.records import FINISHED, Status, step_from_json

if TYPE_CHECKING:
    from conveyor.client.bodies import RunDetail, SubmitPayload
    from conveyor.client.http import ServerClient

FINAL = tuple(str(s) for s in FINISHED)


def profile_in_force(config: Path | None) -> Any:
    """The server profile to use: only when no local config was named. A profile that no
    request could be made with (an endpoint that is not a URL, a token a header cannot carry)
    is refused here, naming where it came from, rather than failing inside the HTTP client."""
    if config is not None:
        return None
    from conveyor.client.profiles import active

    profile = active()
    if profile is not None:
        _check_profile(profile)
    return profile


def _check_profile(profile: Any) -> None:
    import os

    from conveyor.cli.params import token_problem, url_problem
    from conveyor.client.profiles import path

    endpoint_problem = url_problem(profile.endpoint)
    if endpoint_problem is None and not profile.endpoint.startswith(("http://", "https://")):
        endpoint_problem = "it does not start with http:// or https://"
    for variable, problem, what in (
        ("CONVEYOR_ENDPOINT", endpoint_problem, f"an http:// or https:// URL, found {profile.endpoint!r}"),
        ("CONVEYOR_TOKEN", token_problem(profile.token), "a token a header can carry"),
    ):
        if problem is None:
            continue
        if os.environ.get(variable):
            raise ConveyorError(f"{variable}: expected {what} ({problem}); fix or unset {variable}")
        raise ConveyorError(
            f"profile '{profile.name}' in {path()}: expected {what} ({problem}); "
            f"fix it with: conveyor profile add {profile.name} --endpoint URL [--token TOKEN]"
        )


def _client(profile: Any) -> ServerClient:
    from conveyor.client.http import ServerClient

    return ServerClient(profile)


# --- profiles -----------------------------------------------------------------------------


@friendly
def profile_cmd(
    action: str, name: str | None = None, endpoint: str | None = None, token: str | None = None
) -> int:
    """``conveyor profile add|use|remove|list|show``."""
    from conveyor.client import profiles

    if action == "add":
        profiles.add(str(name), str(endpoint), token)
        print(f"added profile {name} -> {endpoint}")
    elif action == "use":
        profiles.use(str(name))
        print(f"using profile {name}")
    elif action == "remove":
        profiles.remove(str(name))
        print(f"removed profile {name}")
    elif action == "list":
        data = profiles.load()
        table = Table(title=f"profiles ({profiles.path()})")
        for column in ("", "name", "endpoint", "token"):
            table.add_column(column)
        for key, value in sorted(data["profiles"].items()):
            mark = "*" if key == data.get("current") else ""
            masked = profiles.Profile(key, value["endpoint"], value.get("token")).masked()
            table.add_row(mark, key, value["endpoint"], masked)
        Console().print(table)
    elif action == "show":
        profile = profiles.active()
        if profile is None:
            print("no profile in force: add one with 'conveyor profile add NAME --endpoint URL'")
            return EXIT_BAD_INPUT
        print(f"profile  {profile.name}\nendpoint {profile.endpoint}\ntoken    {profile.masked()}")
    return 0


# --- runs on a server ---------------------------------------------------------------------


def _shown_name(file: Path) -> str | None:
    """The pipeline file's name as the user typed it, for the server's run pages: its base
    name if the path is longer than the server keeps; None if it holds control characters."""
    name = str(file) if len(str(file)) <= 1000 else file.name[-1000:]
    return name if name and not any(ord(c) < 32 or ord(c) == 127 for c in name) else None


@friendly
def submit(
    profile: Any,
    file: Path,
    config: Path | None,
    params: Path | None,
    code: Path | None,
    run_id: str | None,
    wait: bool,
    param: list[str] | None = None,
    quiet: bool = False,
    tags: list[str] | None = None,
) -> int:
    """``conveyor submit`` to a server: pipeline, config, parameters (``--param`` options
    winning over the file's), tags and an optional code tarball. The pipeline may come from a
    pipe, read once within the size limit."""
    from conveyor.spec.load import _name_of, is_stream, load_parameters, parse_params, read_stream

    try:
        payload: SubmitPayload = {
            "pipeline": read_stream(file) if is_stream(file) else file.read_text(),
            "config": config.read_text() if config else None,
            "parameters": load_parameters(params, overrides=parse_params(param or [])),
            "name": _name_of(str(file)),
        }
        shown = None if is_stream(file) else _shown_name(file)
        if shown:
            payload["file"] = shown  # run pages show it, not the worker's copy
    except OSError as exc:
        raise ConveyorError(f"cannot read {exc.filename}: {exc.strerror}") from None
    if code is not None:
        try:
            is_dir = code.is_dir()
        except OSError as exc:  # a name too long, a loop of links: not a directory either
            raise ConveyorError(f"--code: cannot read {str(code)[:200]!r}: {exc.strerror}") from None
        if not is_dir:
            raise ConveyorError(f"--code must be a directory, not {code}")
        from conveyor.client.bundle import encode_code

        payload["code"] = encode_code(code)
    if run_id:
        payload["run_id"] = run_id
    if tags:
        payload["tags"] = list(tags)
    run = _client(profile).submit(payload)
    # Quiet: the run id alone (for scripts), and no live redraw while waiting.
    print(run["id"] if quiet else f"submitted run {run['id']} to {profile.endpoint} ({profile.name})")
    if not wait:
        return 0
    return watch(profile, run["id"], live=not quiet)


def _run_table(run: RunDetail) -> Table:
    from conveyor.cli.inspect import step_rows

    table = Table(
        title=f"run {run['id']} ({escape(str(run['pipeline_name']))}, {escape(str(run['user']))}): "
        + coloured(run["status"]),
        title_justify="left",
        # Why a run failed before (or besides) its steps: the worker's message, e.g. a
        # module that cannot be imported because no code was submitted.
        caption=escape(str(run["error"])) if run.get("error") and run["status"] != Status.SUCCEEDED else None,
        caption_justify="left",
    )
    for column in ("step", "type", "status", "attempts", "duration", "detail"):
        table.add_column(column)
    steps = {tuple(s.path): s for s in map(step_from_json, run.get("steps") or [])}
    for row in step_rows(steps, items=5):
        table.add_row(*row)
    return table


@friendly
def watch(profile: Any, run_id: str, live: bool = True) -> int:
    """Redraw a server run's steps until it ends; exit 0 only if it succeeded."""
    from rich.live import Live

    client = _client(profile)
    console = Console()
    run = client.run(run_id)
    if live and console.is_terminal:
        with Live(_run_table(run), console=console, refresh_per_second=2) as screen:
            while run["status"] not in FINAL:
                time.sleep(0.5)
                run = client.run(run_id)
                screen.update(_run_table(run))
    else:
        while run["status"] not in FINAL:
            time.sleep(0.3)
            run = client.run(run_id)
        console.print(_run_table(run))
    return 0 if run["status"] == Status.SUCCEEDED else EXIT_FAILED


@friendly
def status(profile: Any, run_id: str, follow: bool) -> int:
    """``conveyor runs status`` on a server (``--watch`` follows the run)."""
    if follow:
        return watch(profile, run_id)
    Console().print(_run_table(_client(profile).run(run_id)))
    return 0


@friendly
def listing(
    profile: Any,
    status_filter: str | None,
    user: str | None,
    pipeline: str | None,
    limit: int,
    tag: str | None = None,
) -> int:
    """``conveyor runs list`` on a server, with its filters (the server applies them); a tags
    column when any run listed has one."""
    page = _client(profile).runs(status=status_filter, user=user, pipeline=pipeline, limit=limit, tag=tag)
    if tag and any("tags" not in run for run in page["runs"]):  # a server from before tags ignores the filter
        raise ConveyorError(
            f"{profile.endpoint} keeps no tags on its runs (a server from before tags): "
            "--tag cannot filter them; upgrade it"
        )
    table = Table(title=f"{page['total']} runs on {profile.endpoint}")
    tagged = any(run.get("tags") for run in page["runs"])
    for column in ("run id", "pipeline", "user", "status", "created", *(["tags"] if tagged else [])):
        table.add_column(column, no_wrap=column == "run id")
    for run in page["runs"]:
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run["created_at"]))
        cells = [escape(str(run[key])) for key in ("id", "pipeline_name", "user", "status")]
        table.add_row(*cells, created, *([escape(", ".join(run.get("tags") or []))] if tagged else []))
    Console().print(table)
    return 0


@friendly
def logs(profile: Any, run_id: str, step: str | None) -> int:
    """``conveyor runs logs`` on a server."""
    sys.stdout.write(_client(profile).logs(run_id, step))
    return 0


@friendly
def action(profile: Any, run_id: str, verb: str) -> int:
    """``conveyor runs cancel|retry`` on a server."""
    run = _client(profile).action(run_id, verb)
    print(f"{verb}: run {run_id} is {run['status']}{' (stopping)' if run.get('cancel_requested') else ''}")
    return 0


@friendly
def rerun(profile: Any, run_id: str, params: Path | None, param: list[str], quiet: bool = False) -> int:
    """``conveyor runs rerun`` on a server: a new run of the run's pipeline, config and code
    (``POST /runs/{id}/rerun``, what the run page's "Re-run with parameters…" does), with
    its parameters as they were, replaced by the file's (``-p``) if given, then changed by
    each ``--param``. The new run keeps the old one's tags and links back to it; its id is
    printed (alone with ``--quiet``, for scripts)."""
    from conveyor.spec.load import load_parameters, parse_params

    overrides = parse_params(param)  # a malformed --param is refused before any request
    client = _client(profile)
    if params is not None:
        parameters: dict[str, object] = dict(load_parameters(params, environ={}))
    else:
        parameters = dict(client.run(run_id).get("parameters") or {})
    parameters.update(overrides)
    new = client.rerun(run_id, parameters)
    print(
        new["id"] if quiet else f"re-ran run {run_id} as {new['id']} on {profile.endpoint} ({profile.name})"
    )
    return 0


@friendly
def rerun_command(run_id: str, params: Path | None, param: list[str], quiet: bool) -> int:
    """``conveyor runs rerun``: needs a server profile (a local run is retried, or run again
    with ``conveyor execute``); exit 2 saying so without one."""
    profile = profile_in_force(None)
    if profile is None:
        raise ConveyorError(
            "runs rerun re-runs a run on a conveyor server: add a profile with "
            "'conveyor profile add NAME --endpoint URL' (or set CONVEYOR_ENDPOINT); "
            "a local run is run again with 'conveyor execute'"
        )
    return rerun(profile, run_id, params, param, quiet)
