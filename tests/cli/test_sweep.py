"""Every command, fed bad values: a message and exit 0, 1 or 2, never a bug.

The command tree is walked from the Typer app, so a new command or option is swept without
anyone adding it here. Each value-taking argument and option of each command gets each
value of :data:`BAD` in turn while the others keep a harmless value (:data:`BENIGN`), in three
settings: a local config with a file run log store, an Argo config, and a server profile
whose endpoint refuses connections. Commands run in this process through the real
``conveyor.cli.main.run`` (the same exception handling as the ``conveyor`` command), in a
temporary working directory with a temporary HOME and XDG directories.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.core import TyperArgument
from typer.testing import CliRunner

from conveyor.cli.main import app, run

#: The bad values: empty, traversal, absolute, huge, malformed, negative, absurdly large.
BAD = {
    "empty": "",
    "parent": "../x",
    # Absolute, and nothing can be written there (an output option must never hit a real file).
    "absolute": "/proc/conveyor-sweep/x",
    "huge": "x" * 100_000,
    "url": "http://[::1",
    "garbage": "%s{0}\t;|&$(true)\n\x7f\u202e'\"",
    "negative": "-1",
    "absurd": "9" * 30,
}

#: Commands that listen or loop until stopped: never run here. Their ports are checked in
#: ``test_ports_are_checked_before_anything_listens``.
SKIPPED = {
    "server start": "serves HTTP and runs workers until stopped",
    "server worker": "claims queued runs until stopped",
    "ui": "serves HTTP until stopped",
}

#: A harmless value for each parameter a command requires (or that sets the scene).
BENIGN = {
    "run_id": "r-1",
    "step": "a",
    "file": "pipeline.yaml",
    "name": "alice",
    "token": "tok-123",
    "key": "abc",
    "endpoint": "http://127.0.0.1:9",
    "status": "Succeeded",
    "verb": "fan-out",
}

PIPELINE = """
dag:
  start_at: a
  steps:
    a: {type: stub, next: b}
    b: {type: task, command_type: shell, command: "echo hello", next: success}
"""
LOCAL = "run_log_store: {type: file, config: {path: runs}}\ncatalog: {type: file, config: {location: cat}}\n"
ARGO = "executor: {type: argo, config: {image: img:1}}\n" + LOCAL


@dataclass(frozen=True)
class Setting:
    """Where a command runs: the config it is given (if it takes one) and the environment."""

    name: str
    config: str | None
    env: dict[str, str]


def commands() -> Iterator[tuple[str, typer.core.TyperCommand]]:
    """Every leaf command of the CLI, by its full name."""

    def walk(command: object, path: tuple[str, ...]) -> Iterator[tuple[str, typer.core.TyperCommand]]:
        subs = getattr(command, "commands", None)
        if subs is None:
            yield " ".join(path), command  # type: ignore[misc]
            return
        for name, sub in subs.items():
            yield from walk(sub, (*path, name))

    yield from walk(typer.main.get_command(app), ())


def valued(command: typer.core.TyperCommand) -> list[Any]:
    """The parameters that take a value (flags do not)."""
    return [p for p in command.params if not getattr(p, "is_flag", False) and not getattr(p, "count", False)]


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def invoke(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run ``conveyor ARGS`` in this process as the ``conveyor`` command does; its exit code
    and everything it wrote."""
    runner = CliRunner()
    saved = sys.argv
    with runner.isolation(env=env) as (_, _, output):
        sys.argv = ["conveyor", *args]
        try:
            run()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            sys.argv = saved
            sys.stdout.flush()
            sys.stderr.flush()
        return code, output.getvalue().decode("utf-8", "replace")


def arguments(command: typer.core.TyperCommand, setting: Setting, bad: str, value: str) -> list[str]:
    """The command line: ``bad`` gets ``value``; what is required, or the config, a benign value."""
    positional: list[str] = []
    options: list[str] = []
    for param in valued(command):
        if param.name == bad:
            given: str | None = value
        elif param.name == "config":
            given = setting.config
        elif param.required:
            assert param.name in BENIGN, f"add a benign value for '{param.name}' to BENIGN"
            given = BENIGN[param.name]
        else:
            given = None
        if given is None:
            continue
        if isinstance(param, TyperArgument):
            positional.append(given)
        else:
            options += [param.opts[0], given]
    # Options first, then '--': a value starting with '-' is still a value.
    return [*options, "--", *positional] if positional else options


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A working directory with a pipeline, the configs, and one recorded run, r-1."""
    root = tmp_path_factory.mktemp("sweep")
    work = root / "work"
    work.mkdir()
    (work / "pipeline.yaml").write_text(PIPELINE)
    (work / "local.yaml").write_text(LOCAL)
    (work / "argo.yaml").write_text(ARGO)
    here = os.getcwd()
    os.chdir(work)
    try:
        code, out = invoke(["execute", "-f", "pipeline.yaml", "-c", "local.yaml", "--run-id", "r-1"], {})
        assert code == 0, out
        yield work
    finally:
        os.chdir(here)


def setting(name: str, root: Path) -> Setting:
    """One of the three settings: commands given a local config, an Argo config (its Argo
    Server refuses connections), or no config with a server profile that refuses them."""
    home = {
        "HOME": str(root / "home"),
        "XDG_CONFIG_HOME": str(root / "home" / "config"),
        "XDG_DATA_HOME": str(root / "home" / "data"),
        "CONVEYOR_CRASH_DIR": str(root / "crash"),
        "ARGO_SERVER": f"127.0.0.1:{closed_port()}",
        "ARGO_SECURE": "false",
        "COLUMNS": "120",
    }
    if name == "server":
        return Setting(name, None, {**home, "CONVEYOR_ENDPOINT": f"http://127.0.0.1:{closed_port()}"})
    return Setting(name, f"{name}.yaml", home)


#: Each remote setting repeats the local sweep through another client (an HTTP request per
#: value): these values cover its kinds of bad input (empty, traversal, huge, malformed).
REMOTE_VALUES = ("empty", "parent", "huge", "url", "garbage")


def cases() -> Iterator[tuple[str, typer.core.TyperCommand, str]]:
    """(command, setting) pairs: commands that take a config are swept in every setting."""
    for name, command in commands():
        if name in SKIPPED:
            continue
        takes_config = any(p.name == "config" for p in command.params)
        for where in ("local", "argo", "server") if takes_config else ("local",):
            yield name, command, where


CASES = list(cases())


@pytest.mark.parametrize(("name", "command", "where"), CASES, ids=[f"{n}-{w}" for n, _, w in CASES])
def test_bad_values_get_a_message_not_a_bug(
    name: str, command: typer.core.TyperCommand, where: str, scene: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(scene)
    place = setting(where, scene.parent)
    problems: list[str] = []
    swept = 0
    for param in valued(command) or [None]:
        if param is not None and param.name == "config" and where != "local":
            continue  # a config given in place of the setting's: the local sweep covers it
        values = [(k, v) for k, v in BAD.items() if where == "local" or k in REMOTE_VALUES]
        for label, value in values if param is not None else [("none", "")]:
            args = arguments(command, place, param.name if param else "", value)
            code, out = invoke([*name.split(), *args], place.env)
            swept += 1
            shown = f"{where}: conveyor {name} {param.name if param else ''}={label}"
            if code not in (0, 1, 2):
                problems.append(f"{shown}: exit {code}: {out[-400:]}")
            elif "internal error" in out or "Traceback" in out:
                problems.append(f"{shown}: {out[-400:]}")
    assert swept and not problems, "\n".join(problems)


def test_every_command_is_swept_or_skipped_with_a_reason() -> None:
    names = {name for name, _ in commands()}
    assert set(SKIPPED) <= names, f"SKIPPED names commands that do not exist: {set(SKIPPED) - names}"
    swept = {name for name, _, _ in CASES}
    assert swept | set(SKIPPED) == names and len(swept) > 30
