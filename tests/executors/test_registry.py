"""Backends by ``type:`` name (``executors.registry``): every built-in name resolves, the
built-in table is exactly the entry points the package declares, a plugin's entry point is
found, and a wrong name or key is a located config error with a suggestion."""

from __future__ import annotations

import importlib
import sys
import tomllib
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from conveyor.catalog.store import RunArtifacts, SharedStore
from conveyor.executors.base import Configured, Executor
from conveyor.executors.registry import BUILTINS, SECTIONS, build
from conveyor.runlog.records import RunRecord
from conveyor.spec.config import Backend
from conveyor.spec.errors import SpecError
from conveyor.step.secrets import EnvSecrets

ROOT = Path(__file__).resolve().parents[2]


def declared() -> dict[str, dict[str, str]]:
    """The entry points pyproject.toml declares, by group."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {group: dict(names) for group, names in project["entry-points"].items()}


def test_the_builtin_table_is_the_declared_entry_points() -> None:
    # The table exists so that a built-in name resolves without scanning every installed
    # distribution (start-up time) and where the package's metadata is absent (a fresh
    # clone on PYTHONPATH, the server's sandbox); it must never drift from pyproject.toml.
    assert declared() == BUILTINS
    assert set(BUILTINS) == set(SECTIONS)


def test_installed_entry_points_agree_with_the_table() -> None:
    installed = {g: {ep.name: ep.value for ep in entry_points(group=g)} for g in BUILTINS}
    if not any(installed.values()):
        pytest.skip("conveyor's metadata is not installed here (a clone on PYTHONPATH)")
    for group, names in BUILTINS.items():
        assert {n: installed[group][n] for n in names} == names, group


@pytest.mark.parametrize(
    ("group", "name"), [(group, name) for group, names in BUILTINS.items() for name in names]
)
def test_every_builtin_name_resolves(group: str, name: str) -> None:
    module, _, attr = BUILTINS[group][name].partition(":")
    assert callable(getattr(importlib.import_module(module), attr))


def test_an_unknown_type_says_what_is_known() -> None:
    with pytest.raises(SpecError) as caught:
        build("conveyor.executors", Backend(type="locl"))
    issue = caught.value.issues[0]
    assert issue.message == "unknown executor type 'locl'" and issue.path == ("executor",)
    assert issue.expected == "one of argo, dask, local, mocked" and "'local'" in (issue.hint or "")


def test_an_unknown_key_is_located_with_a_suggestion() -> None:
    with pytest.raises(SpecError) as caught:
        build("conveyor.executors", Backend(type="local", config={"max_worker": 2}))
    issue = caught.value.issues[0]
    assert issue.message == "executor 'local' does not take 'max_worker'"
    assert issue.path == ("executor", "config", "max_worker") and "max_workers" in (issue.hint or "")


def test_check_only_builds_nothing(tmp_path: Path) -> None:
    location = tmp_path / "catalog"
    assert (
        build("conveyor.catalogs", Backend(type="file", config={"location": str(location)}), check_only=True)
        is None
    )
    assert not location.exists()
    made = build("conveyor.run_log_stores", Backend(type="file", config={"path": str(tmp_path / "runs")}))
    made.save_run(RunRecord(run_id="r1"), create=True)  # built for real: it stores a run
    assert made.load("r1").run.run_id == "r1"


def test_a_plugins_entry_point_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A distribution on the path declaring ``conveyor.secrets: vault`` (its metadata written
    here, as an installer would) is found by name."""
    info = tmp_path / "conveyor_vault-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: conveyor-vault\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[conveyor.secrets]\nvault = conveyor.step.secrets:EnvSecrets\n")
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    assert isinstance(build("conveyor.secrets", Backend(type="vault")), EnvSecrets)
    with pytest.raises(SpecError) as caught:
        build("conveyor.secrets", Backend(type="vaul"))
    assert "vault" in (caught.value.issues[0].expected or "")


@pytest.mark.parametrize(("name", "isolation"), [("local", "thread"), ("mocked", "thread")])
def test_executors_have_what_the_engine_asks_for(name: str, isolation: str) -> None:
    made = build("conveyor.executors", Backend(type=name))
    try:
        assert isinstance(made, Executor) and made.isolation == isolation
    finally:
        made.close()
    process = build("conveyor.executors", Backend(type="local", config={"isolation": "process"}))
    assert isinstance(process, Executor) and process.isolation == "process"
    process.close()


def test_a_config_model_is_declared_and_checked_without_building() -> None:
    from conveyor.executors.argo.executor import ArgoExecutor

    assert isinstance(ArgoExecutor, Configured)
    with pytest.raises(SpecError) as caught:
        build(
            "conveyor.executors",
            Backend(type="argo", config={"image": "x", "parallelism": 0}),
            check_only=True,
        )
    assert [i.path for i in caught.value.issues] == [("executor", "config", "parallelism")]


@pytest.mark.parametrize("name", ["none", "file"])
def test_every_catalog_is_run_artifacts_and_a_shared_store(name: str, tmp_path: Path) -> None:
    config = {"location": str(tmp_path / "catalog")} if name == "file" else {}
    made = build("conveyor.catalogs", Backend(type=name, config=config))
    assert isinstance(made, RunArtifacts) and isinstance(made, SharedStore)
    made.put_shared("k/1", b"one")
    assert made.shared("k/") == {"k/1": b"one"} and made.get_shared("k/1") == b"one"
