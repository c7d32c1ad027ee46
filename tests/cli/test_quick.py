"""``conveyor execute``, ``validate`` and ``execute-single-node`` without Typer: the quick
parser reads what Typer reads, means what Typer means, hands everything else to Typer, and
``conveyor execute`` imports no framework or optional backend it does not use."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.core import TyperArgument

from conveyor.cli import commands, nodes, quick
from conveyor.cli.main import app, run
from conveyor.cli.progress import SUMMARY_ROWS

#: Modules ``conveyor execute`` of a plain local pipeline must not import: the CLI framework,
#: and everything the server, the UI, the SQL stores, remote catalogs, Dask and Argo bring.
NOT_FOR_EXECUTE = (
    "typer",
    "click",
    "sqlalchemy",
    "alembic",
    "psycopg",
    "fastapi",
    "starlette",
    "uvicorn",
    "httpx",
    "httpcore",
    "anyio",
    "jinja2",
    "orjson",
    "dask",
    "distributed",
    "hera",
    "jsonschema",
    "fsspec",
    "s3fs",
    "botocore",
    "nbformat",
    "pygments",
    "markdown_it",
    # The standard library's, where only a mistake, a shell command, a function taking an
    # argparse.Namespace or a process pool needs them.
    "argparse",
    "difflib",
    "shlex",
    "ctypes",
)
#: conveyor's own modules a chain of python tasks on threads does not use.
OWN_NOT_FOR_EXECUTE = ("conveyor.step.pool", "conveyor.step.runner", "conveyor.step.partitions")


@pytest.mark.parametrize("name", sorted(quick.COMMANDS))
def test_each_table_is_the_typer_commands(name: str) -> None:
    command = typer.main.get_command(app).commands[name]  # type: ignore[attr-defined]
    spec = quick.COMMANDS[name]
    values, flags, required, repeated = set(), set(), set(), set()
    arguments = []
    for param in command.params:
        if isinstance(param, TyperArgument):
            arguments.append(param.name)
            continue
        spellings = set(param.opts) | set(param.secondary_opts)
        (flags if getattr(param, "is_flag", False) else values).update(spellings)
        for spelling in param.opts:  # the quick parser's field for it is the parameter's name
            assert (spec.flags if getattr(param, "is_flag", False) else spec.values)[spelling] == param.name
        if param.required:
            required.add(param.name)
        if param.multiple:
            repeated.add(param.name)
    assert tuple(arguments) == spec.arguments
    assert set(spec.values) == values and set(spec.flags) == flags
    assert set(spec.required) == required and set(spec.repeated) == repeated


#: Plain command lines, each read by the quick parser.
PLAIN = [
    ["execute", "-f", "p.yaml"],
    ["execute", "--file", "p.yaml", "-q", "--no-import"],
    ["execute", "--file=p.yaml", "--config=c.yaml", "--params", "x.yaml", "--run-id", "r1"],
    ["execute", "-c", "c.yaml", "-f", "a.yaml", "-f", "b.yaml", "--config-file", "d.yaml"],
    ["execute", "-f", "p.yaml", "--param", "a=1", "--param=b=[1, 2]", "--no-cache", "--refresh-cache"],
    ["execute", "-f", "p.yaml", "--refresh-cache", "-p", "x.yaml", "--parameters-file=y.yaml"],
    ["validate", "-f", "p.yaml"],
    ["validate", "--file=p.yaml", "--check", "-c", "c.yaml", "--no-import", "--param", "a=1", "-p", "x.yaml"],
    ["execute-single-node", "r1", "fan out/3/process", "-f", "p.yaml"],
    ["execute-single-node", "-f", "p.yaml", "r-2", "s", "--config", "c.yaml"],
    ["execute-single-node", "r.3", "--file=p.yaml", "a b", "-c", "c.yaml", "-c", "d.yaml"],
]


@pytest.mark.parametrize("argv", PLAIN, ids=[" ".join(a) for a in PLAIN])
def test_a_plain_command_line_means_what_it_means_to_typer(argv: list[str], monkeypatch: Any) -> None:
    calls: list[tuple[Any, ...]] = []

    def record(*args: Any) -> int:
        calls.append(args)
        return 0

    for module, name in ((commands, "execute"), (commands, "validate"), (nodes, "execute_single_node")):
        monkeypatch.setattr(module, name, record)
    monkeypatch.setattr(sys, "argv", ["conveyor", *argv])
    with pytest.raises(SystemExit) as typer_exit:
        app()
    assert typer_exit.value.code == 0 and len(calls) == 1
    parsed = quick.parse(argv)
    assert parsed is not None and parsed.command == argv[0]
    assert parsed.run() == 0
    assert calls[1] == calls[0]


#: Command lines the quick parser leaves to Typer: help, other commands, mistakes, and
#: spellings it does not read.
UNUSUAL = [
    [],
    ["--help"],
    ["validate", "-q", "-f", "p.yaml"],
    ["validate", "-f", "p.yaml", "--run-id", "r1"],
    ["graph", "-f", "p.yaml"],
    ["execute"],
    ["execute", "--help"],
    ["execute", "-f", "p.yaml", "--help"],
    ["execute", "-q"],
    ["execute", "-f"],
    ["execute", "-f", ""],
    ["execute", "--file="],
    ["execute", "-f", "-q"],
    ["execute", "-qf", "p.yaml"],
    ["execute", "-fp.yaml"],
    ["execute", "-f", "p.yaml", "--quiet=yes"],
    ["execute", "-f", "p.yaml", "extra"],
    ["execute", "-f", "p.yaml", "--"],
    ["execute", "-f", "p.yaml", "--fil", "x"],
    ["execute", "-f", "p.yaml", "--run-id", "a/b"],
    ["execute", "-f", "p.yaml", "--run-id", "x" * 64],
    ["execute-single-node", "r1", "s"],
    ["execute-single-node", "r1", "-f", "p.yaml"],
    ["execute-single-node", "r1", "s", "t", "-f", "p.yaml"],
    ["execute-single-node", "a/b", "s", "-f", "p.yaml"],
    ["execute-single-node", "r1", "", "-f", "p.yaml"],
    ["execute-single-node", "r1", "s", "-f", "p.yaml", "-q"],
    ["execute-single-node", "--help"],
]


@pytest.mark.parametrize("argv", UNUSUAL, ids=[" ".join(a) or "(none)" for a in UNUSUAL])
def test_anything_else_is_left_to_typer(argv: list[str]) -> None:
    assert quick.parse(argv) is None


def test_a_bad_run_id_is_still_typers_usage_error(tmp_path: Path, monkeypatch: Any, capsys: Any) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["conveyor", "execute", "-f", "p.yaml", "--run-id", "a/b"])
    with pytest.raises(SystemExit) as exited:
        run()
    assert exited.value.code == 2
    assert "Invalid value for '--run-id'" in capsys.readouterr().err


def test_a_second_tag_of_a_local_run_is_refused_not_dropped(
    tmp_path: Path, monkeypatch: Any, capsys: Any
) -> None:
    # A local run keeps one tag: given twice, the first was silently replaced.
    argv = ["execute", "-f", "p.yaml", "--tag", "demo", "--tag", "two"]
    assert quick.parse(argv) is None  # left to Typer, which says what is wrong
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["conveyor", *argv])
    with pytest.raises(SystemExit) as exited:
        run()
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "one --tag" in err and "demo, two" in err


def test_execute_imports_only_what_it_uses(tmp_path: Path) -> None:
    (tmp_path / "tiny_steps.py").write_text("def one():\n    return 1\n")
    (tmp_path / "pipeline.yaml").write_text(
        textwrap.dedent(
            """\
            dag:
              start_at: a
              steps:
                a: {command: tiny_steps.one, next: b}
                b: {command: tiny_steps.one, next: success}
            """
        )
    )
    (tmp_path / "config.yaml").write_text("run_log_store: {type: file, config: {path: runs}}\n")
    listing = tmp_path / "modules.txt"
    code = textwrap.dedent(
        f"""\
        import atexit, sys
        atexit.register(lambda: open({str(listing)!r}, "w").write("\\n".join(sorted(sys.modules))))
        sys.argv = ["conveyor", "execute", "-q", "-f", "pipeline.yaml", "-c", "config.yaml"]
        from conveyor.cli.main import run
        run()
        """
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), *sys.path]))
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "succeeded" in done.stdout and (tmp_path / "runs").is_dir()
    modules = set(listing.read_text().split())
    loaded = {name.partition(".")[0] for name in modules}
    assert "conveyor" in loaded and "yaml" in loaded  # the listing is real
    assert sorted(loaded.intersection(NOT_FOR_EXECUTE)) == []
    assert sorted(modules.intersection(OWN_NOT_FOR_EXECUTE)) == []


def test_a_quiet_run_that_says_one_line_never_loads_rich(tmp_path: Path) -> None:
    # Past SUMMARY_ROWS steps that all succeed at once, a quiet run's whole output is its
    # summary line: printed as rich would print it to a pipe, without importing rich (a
    # tenth of a short run's start, and of every Argo pod's).
    (tmp_path / "tiny_steps.py").write_text("def one():\n    return 1\n")
    names = [f"s{i}" for i in range(SUMMARY_ROWS + 2)]
    steps = "".join(
        f"    {name}: {{command: tiny_steps.one, next: {after}}}\n"
        for name, after in zip(names, [*names[1:], "success"], strict=True)
    )
    (tmp_path / "pipeline.yaml").write_text(f"dag:\n  start_at: s0\n  steps:\n{steps}")
    (tmp_path / "config.yaml").write_text("run_log_store: {type: file, config: {path: runs}}\n")
    listing = tmp_path / "modules.txt"
    code = textwrap.dedent(
        f"""\
        import atexit, sys
        atexit.register(lambda: open({str(listing)!r}, "w").write("\\n".join(sorted(sys.modules))))
        sys.argv = ["conveyor", "execute", "-q", "-f", "pipeline.yaml", "-c", "config.yaml"]
        from conveyor.cli.main import run
        run()
        """
    )
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), *sys.path])
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    loaded = {name.partition(".")[0] for name in listing.read_text().split()}
    assert "conveyor" in loaded and "rich" not in loaded
    line = done.stdout.strip()
    assert re.fullmatch(
        rf"run [0-9a-f-]+: succeeded in \d+\.\d\ds; {len(names)} tasks succeeded at their first attempt", line
    ), line
    # ... and it is what rich prints to a pipe for the same markup.
    from conveyor.cli.richconsole import Console
    from conveyor.cli.style import coloured

    out = io.StringIO()
    Console(file=out).print(line.replace(": succeeded", ": " + coloured("succeeded"), 1))
    assert out.getvalue().strip() == line
    assert done.stderr == ""


def test_a_trailing_newline_is_not_part_of_a_valid_run_id_or_tag() -> None:
    # '$' in the patterns allows one trailing newline to re.match: a run folder 'nl\n' was made.
    from conveyor.cli import params
    from conveyor.runlog.records import check_run_id

    assert not params.is_run_id("nl\n") and params.is_run_id("nl")
    with pytest.raises(ValueError):
        check_run_id("nl\n")
    with pytest.raises(typer.BadParameter):
        params.tag("t\n")
    assert quick.parse(["execute", "-f", "p.yaml", "--tag", "t\n"]) is None
