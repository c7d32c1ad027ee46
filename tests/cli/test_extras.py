"""A command whose optional dependency is missing exits 2 naming the extra to install.

Each command runs in a fresh process whose import system refuses the modules of one extra
(a finder first on ``sys.meta_path`` raises ModuleNotFoundError for them), as they would be
refused where only conveyor's core is installed.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from conveyor.cli.errors import COMMAND_EXTRAS, MODULE_EXTRAS, missing_extra
from support import ROOT, conveyor_traceback

BLOCKING = """
import sys
from importlib.abc import MetaPathFinder

blocked = set(sys.argv[1].split(","))


class Refuse(MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname.partition(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


sys.meta_path.insert(0, Refuse())
sys.argv = ["conveyor", *sys.argv[2:]]
from conveyor.cli import main

main()
"""

PIPELINE = """
dag:
  start_at: a
  steps:
    a: {type: task, command_type: shell, command: "echo hi", next: success}
"""
NOTEBOOK = """
dag:
  start_at: a
  steps:
    a: {type: task, command_type: notebook, command: nb.ipynb, next: success}
"""
POSTGRES_URL = "postgresql+psycopg://user@127.0.0.1:9/none"
CONFIGS = {
    "dask.yaml": "executor: {type: dask}\n",
    "postgres.yaml": f"run_log_store: {{type: postgres, config: {{url: '{POSTGRES_URL}'}}}}\n",
    "s3.yaml": "catalog: {type: file, config: {location: 's3://bucket/x'}}\n",
    "argo.yaml": "executor: {type: argo, config: {image: img:1}}\n",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def extra_modules(extra: str) -> list[str]:
    """The modules an extra brings, as :data:`MODULE_EXTRAS` knows them."""
    return [module for module, extras in MODULE_EXTRAS.items() if extra in extras]


#: (extra, command line): every command that needs an extra, with what it needs. The modules
#: of the extra are refused, or those named after a colon.
CASES = [
    *[
        ("server", args)
        for args in (
            ["server", "migrate"],
            ["server", "users", "create", "alice"],
            ["server", "tokens", "create", "alice"],
            ["server", "tokens", "revoke", "1"],
            ["server", "tokens", "list", "alice"],
            ["server", "worker", "--once"],
            ["server", "start", "--port", "PORT"],
        )
    ],
    # The server installed, not its PostgreSQL driver: only psycopg is missing.
    ("postgres:psycopg", ["server", "migrate", "--db", POSTGRES_URL]),
    ("postgres", ["execute", "-f", "pipeline.yaml", "-c", "postgres.yaml"]),
    ("postgres", ["runs", "list", "-c", "postgres.yaml"]),
    ("ui", ["ui", "--port", "PORT"]),
    ("dask", ["execute", "-f", "pipeline.yaml", "-c", "dask.yaml"]),
    ("s3", ["execute", "-f", "pipeline.yaml", "-c", "s3.yaml"]),
    ("notebook", ["execute", "-f", "notebook.yaml"]),
    ("argo", ["submit", "-f", "pipeline.yaml", "-c", "argo.yaml", "--server", "127.0.0.1:9"]),
    ("argo", ["runs", "status", "r-1", "-c", "argo.yaml", "--server", "127.0.0.1:9"]),
    ("server", ["runs", "list"]),
    ("server", ["submit", "-f", "pipeline.yaml"]),
]


@pytest.mark.parametrize(("extra", "args"), CASES, ids=[f"{e}:{' '.join(a[:3])}" for e, a in CASES])
def test_a_missing_extra_is_named_with_exit_2(tmp_path: Path, extra: str, args: list[str]) -> None:
    (tmp_path / "pipeline.yaml").write_text(PIPELINE)
    (tmp_path / "notebook.yaml").write_text(NOTEBOOK)
    (tmp_path / "nb.ipynb").write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    for name, text in CONFIGS.items():
        (tmp_path / name).write_text(text)
    env = dict(
        os.environ,
        CONVEYOR_CRASH_DIR=str(tmp_path / "crash"),
        CONVEYOR_ENDPOINT="http://127.0.0.1:9",
        CONVEYOR_SERVER_SANDBOX="none",
    )
    extra, _, only = extra.partition(":")
    blocked = only or ",".join(extra_modules(extra))
    argv = [str(free_port()) if a == "PORT" else a for a in args]
    out = subprocess.run(
        [sys.executable, "-c", BLOCKING, blocked, *argv],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    said = out.stdout + out.stderr
    assert out.returncode == 2, said
    assert f"conveyor[{extra}]" in said, said
    assert "internal error" not in said and not conveyor_traceback(said), said


def test_the_table_of_extras_agrees_with_pyproject() -> None:
    """Every module named in MODULE_EXTRAS is brought by each extra it lists, per pyproject."""
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    brings = {
        extra: {re.split(r"[\[<>=!~ ;]", req, maxsplit=1)[0].lower().replace("-", "_") for req in reqs}
        for extra, reqs in declared.items()
    }
    brings.pop("dev")
    for module, extras in MODULE_EXTRAS.items():
        assert set(extras) == {e for e, mods in brings.items() if module in mods}, module
    assert set().union(*brings.values()) == set(MODULE_EXTRAS)  # every optional module is known
    assert set(COMMAND_EXTRAS.values()) <= set(brings)


def test_a_command_picks_its_own_extra_among_those_bringing_a_module() -> None:
    fastapi = ModuleNotFoundError("No module named 'fastapi'", name="fastapi")
    assert missing_extra(fastapi, "ui") == ("ui", "fastapi")
    assert missing_extra(fastapi, "server") == ("server", "fastapi")
    wrapped = RuntimeError("cannot start")
    wrapped.__cause__ = ModuleNotFoundError("No module named 'sqlalchemy.orm'", name="sqlalchemy.orm")
    assert missing_extra(wrapped, "execute") == ("postgres", "sqlalchemy")
    assert missing_extra(ModuleNotFoundError("x", name="numpy")) is None
    assert missing_extra(ValueError("x")) is None
