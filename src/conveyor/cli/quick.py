"""A parser for plain ``conveyor execute`` command lines, so that running a pipeline does not
pay for the CLI framework (Typer and the pydantic validators it builds per option cost more
than a short pipeline's whole run).

It reads only what is unambiguous: ``execute`` first, then the options of ``conveyor
execute --help``, each as ``--long VALUE``, ``--long=VALUE`` or ``-s VALUE`` (flags alone),
with values that are neither empty nor start with ``-``. For anything else it answers None
and the caller hands the command line to the Typer tree, which then accepts it or says what
is wrong as it always did. The option table is checked against the Typer command's own by
``tests/cli/test_quick.py``, so an option added to one and not the other fails a test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

#: Options of ``conveyor execute`` that take a value: spelling -> field.
VALUES = {
    "--file": "file",
    "-f": "file",
    "--config-file": "config",
    "--config": "config",
    "-c": "config",
    "--parameters-file": "params",
    "--params": "params",
    "-p": "params",
    "--param": "param",
    "--run-id": "run_id",
}
#: Its flags: spelling -> field.
FLAGS = {
    "--quiet": "quiet",
    "-q": "quiet",
    "--no-cache": "no_cache",
    "--refresh-cache": "refresh_cache",
    "--no-import": "no_import",
}


@dataclass(frozen=True)
class ExecuteArgs:
    """What a ``conveyor execute`` command line asks, in the terms of
    :func:`conveyor.cli.commands.execute`."""

    file: Path
    config: Path | None = None
    params: Path | None = None
    run_id: str | None = None
    quiet: bool = False
    cache: str = "use"
    imports: bool = True
    param: list[str] = field(default_factory=list)


def parse_execute(argv: list[str]) -> ExecuteArgs | None:
    """``argv`` (without the program name) read as ``conveyor execute``, or None when it is
    not that command or not in the plain form this parser reads (the Typer tree decides)."""
    if not argv or argv[0] != "execute":
        return None
    values: dict[str, str] = {}
    params: list[str] = []
    flags: set[str] = set()
    words = iter(argv[1:])
    for word in words:
        name, eq, value = word.partition("=") if word.startswith("--") else (word, "", "")
        if not eq and name in FLAGS:
            flags.add(FLAGS[name])
            continue
        key = VALUES.get(name)
        if key is None:
            return None  # --help, a positional, a typo, -qf: Typer's to answer
        if not eq:
            value = next(words, "")
        if not value or value.startswith("-"):
            return None
        if key == "param":
            params.append(value)
        else:
            values[key] = value  # the last one wins, as with Typer
    if "file" not in values or not _run_id_ok(values.get("run_id")):
        return None
    config, parameters = values.get("config"), values.get("params")
    return ExecuteArgs(
        file=Path(values["file"]),
        config=Path(config) if config is not None else None,
        params=Path(parameters) if parameters is not None else None,
        run_id=values.get("run_id"),
        quiet="quiet" in flags,
        cache="off" if "no_cache" in flags else "refresh" if "refresh_cache" in flags else "use",
        imports="no_import" not in flags,
        param=params,
    )


def _run_id_ok(value: str | None) -> bool:
    """Whether ``--run-id``'s value passes the option's own check (when it does not, Typer
    reports it as the usage error it is)."""
    if value is None:
        return True
    from conveyor.cli.params import is_run_id

    return is_run_id(value)
