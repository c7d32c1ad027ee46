"""A python step's cache key covers the code it reaches: its module and the user's modules
that module imports, transitively (relative and lazy imports too), but not the standard
library, installed packages or conveyor. Editing a helper is a miss; leaving it is a hit."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from conveyor.runlog.file import FileRunLogStore
from conveyor.spec.models import CacheSpec, TaskNode
from conveyor.step import codekey
from conveyor.step.cache import cache_key
from support import run_cli


def _write(path: Path, text: str) -> None:
    """Write ``text``, moving the modification time on (two writes within one clock tick
    must still look like an edit)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    if path.stat().st_mtime_ns <= before:
        os.utime(path, ns=(before + 1_000_000, before + 1_000_000))


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A package of the user's (unique name: resolutions are remembered per process) whose
    step module imports a helper absolutely, one relatively, and one lazily in the function;
    the helpers import a deeper helper and the standard library and pytest."""
    name = "u" + uuid.uuid4().hex[:8]
    root = tmp_path / name
    _write(root / "__init__.py", "")
    _write(
        root / "steps.py",
        f"import json\nimport pytest\nfrom {name} import helper\nfrom . import rel\n\n\n"
        "def step(x: int) -> int:\n"
        f"    from {name}.lazy import bump\n"
        "    return bump(helper.twice(x)) + rel.ONE\n",
    )
    _write(root / "helper.py", "from .deep.core import FACTOR\n\n\ndef twice(x):\n    return x * FACTOR\n")
    _write(root / "rel.py", "ONE = 1\n")
    _write(root / "lazy.py", "def bump(x):\n    return x + 10\n")
    _write(root / "deep" / "__init__.py", "")
    _write(root / "deep" / "core.py", "import os\nFACTOR = 2\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_the_modules_reached_are_the_users_only(package: str, tmp_path: Path) -> None:
    reached = codekey.reached(f"{package}.steps", str(tmp_path / package / "steps.py"))
    expected = {"", ".steps", ".helper", ".rel", ".lazy", ".deep", ".deep.core"}
    assert set(reached) == {package + suffix for suffix in expected}
    assert not codekey.is_user_file(json.__file__) and not codekey.is_user_file(pytest.__file__)
    assert not codekey.is_user_file(codekey.__file__)  # conveyor is not the step's code


def _key(package: str, tmp_path: Path) -> str:
    node = TaskNode.model_validate({"type": "task", "command": f"{package}.steps.step", "next": "success"})
    return cache_key(node, CacheSpec(), {"x": 1}, tmp_path, {})


@pytest.mark.parametrize("edited", ["helper.py", "rel.py", "lazy.py", "deep/core.py"])
def test_editing_any_module_reached_changes_the_key(package: str, tmp_path: Path, edited: str) -> None:
    first = _key(package, tmp_path)
    assert _key(package, tmp_path) == first  # unchanged: the same key
    path = tmp_path / package / edited
    _write(path, path.read_text() + "\n# edited\n")
    assert _key(package, tmp_path) != first


def test_editing_an_unrelated_module_keeps_the_key(package: str, tmp_path: Path) -> None:
    first = _key(package, tmp_path)
    _write(tmp_path / package / "unused.py", "X = 1\n")
    assert _key(package, tmp_path) == first


PIPELINE = """dag:
  cache: true
  start_at: calc
  steps:
    calc: {command: PKG.steps.step, returns: [y], next: success}
"""


def test_a_helper_edited_between_runs_misses_and_unchanged_hits(package: str, tmp_path: Path) -> None:
    """Real runs, each a fresh process: the second hits; after the deep helper is edited,
    the third runs again and returns the new result."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "pipeline.yaml").write_text(PIPELINE.replace("PKG", package))
    (work / "config.yaml").write_text("run_log_store: {type: file}\ncatalog: {type: file}\n")
    (work / "params.yaml").write_text(json.dumps({"x": 5}))
    path = os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])

    def run(run_id: str) -> tuple[int, bool]:
        done = run_cli(
            "execute", "-q", "-f", "pipeline.yaml", "-c", "config.yaml", "-p", "params.yaml", "--run-id", run_id,
            cwd=work, env={"PYTHONPATH": path},
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        log = FileRunLogStore(str(work / ".conveyor/runs")).load(run_id)
        return log.run.final_parameters["y"], "cached" in log.steps[("calc",)].info

    assert run("first") == (5 * 2 + 10 + 1, False)
    assert run("same") == (21, True)
    _write(tmp_path / package / "deep" / "core.py", "import os\nFACTOR = 3\n")
    assert run("edited") == (5 * 3 + 10 + 1, False)
