"""A parser for the plain command lines of the commands that run or check pipelines, so that
they do not pay for the CLI framework: importing Typer and the validator it builds per option
on each call were about an eighth of the CPU of ``conveyor execute`` on a 50-step chain.

The commands: ``conveyor execute`` (runs a pipeline here), ``conveyor execute-single-node``
(what every Argo pod runs, once per step) and ``conveyor validate`` (what CI runs on each
change). Only what is unambiguous is read: the command first, then its arguments and the
options of its ``--help``, each option as ``--long VALUE``, ``--long=VALUE`` or ``-s VALUE``
(flags alone), with values and arguments that are neither empty nor start with ``-``, and run
ids that pass their check. For anything else :func:`parse` answers None and the caller hands
the command line to the Typer tree, which then accepts it or says what is wrong as it always
did. ``tests/cli/test_quick.py`` holds each table here equal to the Typer command's, so an
option added to one and not the other fails.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

_FILE = {"--file": "file", "-f": "file"}
_CONFIG = {"--config-file": "config", "--config": "config", "-c": "config"}


class Command(NamedTuple):
    """What one command takes: its arguments in order, and its options by spelling. (Named
    tuples, not dataclasses: a frozen dataclass costs ten times as much to define, and this
    module is on the path of every run.)"""

    arguments: tuple[str, ...]
    #: Options that take a value: spelling -> field. Given twice, the last one wins.
    values: dict[str, str]
    #: Flags: spelling -> field.
    flags: dict[str, str]
    #: Options that must be given (without them Typer's usage error is the answer).
    required: tuple[str, ...] = ("file",)
    #: Options that may be repeated, each value kept.
    repeated: tuple[str, ...] = ()
    #: Fields holding a run id, checked as the Typer command checks them.
    run_ids: tuple[str, ...] = ()
    #: Fields holding a run's tag, checked as the Typer command checks them.
    tags: tuple[str, ...] = ()


COMMANDS = {
    "execute": Command(
        arguments=(),
        values={
            **_FILE,
            **_CONFIG,
            "--parameters-file": "params",
            "--params": "params",
            "-p": "params",
            "--param": "param",
            "--run-id": "run_id",
            "--tag": "tag",
        },
        flags={
            "--quiet": "quiet",
            "-q": "quiet",
            "--no-cache": "no_cache",
            "--refresh-cache": "refresh_cache",
            "--no-import": "no_import",
        },
        repeated=("param", "tag"),
        run_ids=("run_id",),
        tags=("tag",),
    ),
    "validate": Command(
        arguments=(),
        values={
            **_FILE,
            **_CONFIG,
            "--parameters-file": "params",
            "--params": "params",
            "-p": "params",
            "--param": "param",
        },
        flags={"--check": "check", "--no-import": "no_import"},
        repeated=("param",),
    ),
    "execute-single-node": Command(
        arguments=("run_id", "step"), values={**_FILE, **_CONFIG}, flags={}, run_ids=("run_id",)
    ),
}


class Quick(NamedTuple):
    """A command line read: the command, and its arguments and options by field."""

    command: str
    given: dict[str, str]
    lists: dict[str, list[str]]
    flags: frozenset[str]

    def path(self, key: str) -> Path | None:
        """The option ``key`` as a path, None when not given."""
        value = self.given.get(key)
        return Path(value) if value is not None else None

    def run(self) -> int:
        """Do the command, as the Typer command does with the same command line; its exit code."""
        file = Path(self.given["file"])
        if self.command == "execute-single-node":
            from conveyor.cli import nodes

            return nodes.execute_single_node(
                self.given["run_id"], self.given["step"], file, self.path("config")
            )
        from conveyor.cli import commands

        flags = self.flags
        if self.command == "validate":
            imports = "no_import" not in flags
            params = self.path("params")
            return commands.validate(
                file, self.path("config"), "check" in flags, params, imports, self.lists.get("param", [])
            )
        return commands.execute(
            file,
            self.path("config"),
            self.path("params"),
            self.given.get("run_id"),
            "quiet" in flags,
            "off" if "no_cache" in flags else "refresh" if "refresh_cache" in flags else "use",
            "no_import" not in flags,
            self.lists.get("param", []),
            next(iter(self.lists.get("tag", [])), None),
        )


def parse(argv: list[str]) -> Quick | None:
    """``argv`` (without the program name) read as one of :data:`COMMANDS`, or None when it
    is another command or not in the plain form read here (the Typer tree decides)."""
    spec = COMMANDS.get(argv[0]) if argv else None
    if spec is None:
        return None
    given: dict[str, str] = {}
    lists: dict[str, list[str]] = {}
    flags: set[str] = set()
    arguments = iter(spec.arguments)
    words = iter(argv[1:])
    for word in words:
        if not word:
            return None
        if not word.startswith("-"):
            key = next(arguments, None)
            if key is None:
                return None  # one argument too many: Typer's usage error
            given[key] = word
            continue
        name, eq, value = word.partition("=") if word.startswith("--") else (word, "", "")
        if not eq and name in spec.flags:
            flags.add(spec.flags[name])
            continue
        key = spec.values.get(name)
        if key is None:
            return None  # --help, a typo, -qf, --: Typer's to answer
        if not eq:
            value = next(words, "")
        if not value or value.startswith("-"):
            return None
        if key in spec.repeated:
            lists.setdefault(key, []).append(value)
        else:
            given[key] = value  # the last one wins, as with Typer
    if next(arguments, None) is not None or any(key not in given for key in spec.required):
        return None
    if not all(_run_id_ok(given.get(key)) for key in spec.run_ids):
        return None
    for key in spec.tags:  # one tag, well formed; else Typer says what is wrong
        values = lists.get(key, [])
        if len(values) > 1 or not all(_tag_ok(value) for value in values):
            return None
    return Quick(argv[0], given, lists, frozenset(flags))


def _run_id_ok(value: str | None) -> bool:
    """Whether a run id passes the Typer command's own check (when it does not, Typer reports
    it as the usage error it is)."""
    if value is None:
        return True
    from conveyor.cli.params import is_run_id

    return is_run_id(value)


def _tag_ok(value: str | None) -> bool:
    """Whether a tag passes the Typer command's own check (else Typer reports it)."""
    if value is None:
        return True
    from conveyor.cli.params import is_tag

    return is_tag(value)
