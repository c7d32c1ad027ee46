"""``conveyor execute``'s start-up (``conveyor.cli.startup``): the collector paused and
conveyor's own validators built without pydantic's plugin lookup, and neither seen by the
run: the user's code runs with the collector on, and the user's models get the user's
pydantic plugins."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conveyor.cli.startup import PLUGINS_OFF, startup

#: A pydantic plugin, installed as a distribution that declares it (the ``pydantic`` entry
#: point group): it writes down every model it is asked to watch.
PLUGIN = """\
import os


class _Watch:
    def new_schema_validator(self, schema, schema_type, path, kind, config, settings):
        with open(os.environ["WATCHED_FILE"], "a") as out:
            out.write(f"{path.module}.{path.name}\\n")
        return None, None, None


plugin = _Watch()
"""

#: The user's steps: a model defined when the module is imported (after start-up), one
#: validated in the step, and what the step sees of the collector and the environment.
STEPS = """\
import gc
import json
import os

from pydantic import BaseModel


class AtImport(BaseModel):
    x: int


def look():
    class InStep(BaseModel):
        y: int

    InStep(y=int(AtImport(x=1).x))
    with open(os.environ["SEEN_FILE"], "w") as out:
        json.dump({"gc": gc.isenabled(), "env": os.environ.get("PYDANTIC_DISABLE_PLUGINS")}, out)
"""


def _install_plugin(site: Path) -> None:
    site.mkdir()
    (site / "watchplug.py").write_text(PLUGIN)
    info = site / "watchplug-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: watchplug\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[pydantic]\nwatch = watchplug:plugin\n")


def test_the_users_models_get_the_users_plugins_and_the_collector(tmp_path: Path) -> None:
    _install_plugin(tmp_path / "site")
    (tmp_path / "user_steps.py").write_text(STEPS)
    (tmp_path / "pipeline.yaml").write_text(
        "dag:\n  start_at: a\n  steps:\n    a: {command: user_steps.look, next: success}\n"
    )
    (tmp_path / "config.yaml").write_text("run_log_store: {type: file, config: {path: runs}}\n")
    watched, seen = tmp_path / "watched.txt", tmp_path / "seen.json"
    env = {k: v for k, v in os.environ.items() if k != PLUGINS_OFF}
    env.update(
        PYTHONPATH=os.pathsep.join([str(tmp_path / "site"), str(tmp_path), *sys.path]),
        WATCHED_FILE=str(watched),
        SEEN_FILE=str(seen),
    )
    code = "from conveyor.cli.main import run; run()"
    argv = [sys.executable, "-c", code, "execute", "-q", "-f", "pipeline.yaml", "-c", "config.yaml"]
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    models = watched.read_text().split()
    # The user's models, at import and in the step, are watched by the user's plugin ...
    assert "user_steps.AtImport" in models and "user_steps.look.<locals>.InStep" in models
    # ... conveyor's own (the pipeline's, the config's) were built without the lookup ...
    assert [m for m in models if m.startswith("conveyor.")] == []
    # ... and the step ran with the collector on and pydantic's switch as the user left it.
    assert seen.read_text() == '{"gc": true, "env": null}'


def test_startup_restores_the_collector_and_the_environment() -> None:
    # In a fresh interpreter: start-up sets the variable only while the process has one
    # thread, and a test run has others (servers, writers) left by earlier tests.
    code = f"""
import gc, os, sys
sys.path.insert(0, {str(Path(__file__).resolve().parents[2] / "src")!r})
from conveyor.cli.startup import PLUGINS_OFF, command_process, startup
os.environ.pop(PLUGINS_OFF, None)
assert gc.isenabled()
frozen = gc.get_freeze_count()
try:
    with command_process(), startup():
        assert not gc.isenabled() and os.environ[PLUGINS_OFF] == "__all__"
        raise RuntimeError("a start-up that fails")
except RuntimeError:
    pass
assert gc.isenabled() and PLUGINS_OFF not in os.environ
assert gc.get_freeze_count() > frozen  # what start-up made is out of the collector's sight
print("held")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "held", done.stderr


def test_only_the_commands_own_process_is_frozen() -> None:
    # In a program that runs a command in its own process (this test run), start-up's
    # block pauses the collector but freezes nothing of the program's.
    frozen = gc.get_freeze_count()
    with startup():
        assert not gc.isenabled()
    assert gc.isenabled() and gc.get_freeze_count() == frozen


def test_startup_leaves_a_callers_own_choices_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PLUGINS_OFF, "logfire")
    gc.disable()
    frozen = gc.get_freeze_count()
    try:
        with startup():
            assert os.environ[PLUGINS_OFF] == "logfire"
        # A collector turned off by the embedding program: neither turned on nor frozen.
        assert not gc.isenabled() and gc.get_freeze_count() == frozen
        assert os.environ[PLUGINS_OFF] == "logfire"
    finally:
        gc.enable()


def test_startup_does_not_touch_the_environment_with_other_threads_running(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import threading

    monkeypatch.delenv(PLUGINS_OFF, raising=False)
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        with startup():
            assert PLUGINS_OFF not in os.environ  # the other thread may be building its models
    finally:
        release.set()
        other.join()
        gc.unfreeze()
