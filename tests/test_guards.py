"""Policies kept by tests, not hopes: no import cycles, a lean ``--help``, exported names."""

from __future__ import annotations

import subprocess
import sys

import conveyor
import conveyor.sdk
from support.imports import import_cycles


def test_no_import_cycles_anywhere_in_the_package() -> None:
    assert import_cycles("conveyor") == []


def test_the_cycle_finder_findsimport_cycles(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    package = tmp_path / "loopy"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from loopy import b\n")
    (package / "b.py").write_text("def f():\n    from loopy import a\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert import_cycles("loopy") == [["loopy.a", "loopy.b"]]


def _imported_by(module: str) -> tuple[list[str], set[str]]:
    """The conveyor modules, and the top-level packages, that importing ``module`` loads."""
    code = (
        f"import sys, {module}\n"
        "print(','.join(sorted(m for m in sys.modules if m.startswith('conveyor'))))\n"
        "print(','.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    ours, top = out.strip().split("\n")
    return ours.split(","), set(top.split(","))


HEAVY = {"pydantic", "yaml", "rich", "fsspec", "sqlalchemy", "fastapi", "httpx", "distributed", "pygments"}


def test_cli_import_pulls_in_only_what_help_needs() -> None:
    ours, top = _imported_by("conveyor.cli.app")
    # cli.params: the options' checks (run ids, ports, URLs), standard library and typer only.
    assert ours == [
        "conveyor",
        "conveyor.cli",
        "conveyor.cli.app",
        "conveyor.cli.app_pods",
        "conveyor.cli.app_runs",
        "conveyor.cli.app_server",
        "conveyor.cli.app_tools",
        "conveyor.cli.options",
        "conveyor.cli.params",
    ]
    assert HEAVY.isdisjoint(top)


def test_cli_entry_imports_no_framework() -> None:
    # The entry point decides between the quick execute parser and the Typer tree: it
    # imports neither until it has looked at the command line.
    ours, top = _imported_by("conveyor.cli.main")
    assert ours == ["conveyor", "conveyor.cli", "conveyor.cli.main"]
    assert (HEAVY | {"typer"}).isdisjoint(top)


def test_sdk_all_matches_what_the_package_exports() -> None:
    """``__all__`` lists exactly the SDK's building blocks (every public class of the
    definitions module but the bases of steps and jobs, and runnable's return kinds, plus
    the runnable Pipeline and AsyncPipeline, a run's result and the error a failed run
    raises), and each one is what
    ``conveyor.<name>`` gives."""
    from conveyor.spec import sdk as definitions

    building_blocks = {
        name
        for name, value in vars(definitions).items()
        if isinstance(value, type) and value.__module__ == definitions.__name__ and not name.startswith("_")
    } - {"Step", "Job"}
    helpers = {"json", "metric", "pickled"}  # runnable's return kinds
    assert helpers <= set(vars(definitions))
    assert sorted(conveyor.sdk.__all__) == sorted(
        building_blocks | helpers | {"AsyncPipeline", "RunResult", "ExecutionFailedError"}
    )
    for name in conveyor.sdk.__all__:
        assert getattr(conveyor, name) is getattr(conveyor.sdk, name)
