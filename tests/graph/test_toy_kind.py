"""A node kind added by a plugin, from this file alone: ``retry-until`` runs its branch again
until a parameter is true. Its model and behaviour are below; an entry point (a dist-info
folder made by the fixture, as ``pip install`` would leave it) registers the model under
``conveyor.kinds``. Nothing in ``src`` names it, yet it is validated, executed, shown by
``runs show``, by the UI's run view and by diagrams, rendered for Argo, and run there by
the pods (the Argo simulator), which find it through the same entry point.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import pytest
import yaml
from pydantic import Field

from conveyor.graph.kinds import KINDS
from conveyor.graph.kinds.base import Composite, NotReached, PlanError, Pod, Recorded, Walker
from conveyor.graph.kinds.info import Info
from conveyor.graph.scope import Scope
from conveyor.runlog.file import FileRunLogStore
from conveyor.runlog.records import Status
from conveyor.spec import kindreg
from conveyor.spec.models import IDENTIFIER, Entry, Graph, Linked, Shape
from support import run_cli
from support.argo_sim import Simulation

HERE = Path(__file__).resolve().parent
MODULE = Path(__file__).stem

# --- the plugin --------------------------------------------------------------------------


class RetryUntilNode(Linked):
    """Runs ``branch`` until the boolean parameter ``until`` is true, at most ``tries`` times;
    each try sees what the one before left."""

    composite: ClassVar[bool] = True
    entry: ClassVar[Entry | None] = "iteration"
    subgraph_fields: ClassVar[dict[str, Literal["one", "keyed"]]] = {"branch": "one"}
    shape: ClassVar[Shape] = "repeat"
    behaviour: ClassVar[str | None] = f"{MODULE}:RetryUntilKind"

    type: Literal["retry-until"]
    branch: Graph
    until: Annotated[str, Field(pattern=IDENTIFIER)]
    tries: Annotated[int, Field(ge=1, le=50)] = 3

    def named_subgraphs(self) -> dict[str, Graph]:
        return {f"until {self.until}": self.branch}

    def inner(self, key: str) -> Graph:
        if not key.isdigit():
            raise KeyError(f"'{key}' is not a try index")
        return self.branch


@dataclass(kw_only=True)
class TriesInfo(Info):
    """How many tries ran."""

    KEYS: ClassVar[tuple[str, ...]] = ("tries", "error")
    tries: int | None = None

    def summary(self, error: str | None = None) -> str:
        detail = super().summary(error)
        return f"{self.tries} tries" + (f"; {detail}" if detail else "")

    def label(self) -> str:
        return f"{self.tries} tries"


def _replay(
    recorded: Recorded, node: RetryUntilNode, path: list[str], scope: Scope, count: int
) -> tuple[Scope, bool | None]:
    carry, last = Scope(scope), None
    for index in range(count):
        child = Scope(carry)
        last = recorded.graph(node.branch, [*path, str(index)], child)
        carry.update(child.own)
    return carry, last


class RetryUntilKind(Composite[RetryUntilNode]):
    """In-process, replayed, entered by a try index, and on Argo a recursive DAG whose check
    is the ``until-check`` verb."""

    info = TriesInfo
    verbs: ClassVar[dict[str, tuple[str, ...]]] = {"until-check": ("again", "next")}

    def body(
        self, walker: Walker, node: RetryUntilNode, path: list[str], scope: Scope, info: TriesInfo
    ) -> bool:
        carry = Scope(scope)
        try:
            for index in range(node.tries):
                child = Scope(carry)
                ok = walker.run_graph(node.branch, [*path, str(index)], child)
                carry.update(child.own)
                info.tries = index + 1
                if ok and carry.get(node.until) is True:
                    return True
            raise PlanError(f"'{node.until}' is still not true after {node.tries} tries")
        finally:
            scope.update(carry.own)

    def replay(self, recorded: Recorded, node: RetryUntilNode, path: list[str], scope: Scope) -> bool | None:
        record = recorded.record(path)
        if record is None or not record.status.finished:
            return None
        carry, _ = _replay(recorded, node, path, scope, TriesInfo.from_json(record.info).tries or 0)
        scope.update(carry.own)
        return record.status is Status.SUCCEEDED

    def enter(
        self, node: RetryUntilNode, key: str, path: list[str], scope: Scope, recorded: Recorded
    ) -> tuple[Graph, Scope]:
        if not key.isdigit():
            raise NotReached(f"'{key}' is not a try of '{path[-1]}'")
        carry, _ = _replay(recorded, node, path, scope, int(key))
        return node.branch, Scope(carry)

    def verb(self, pod: Pod, name: str, node: RetryUntilNode, path: list[str], index: int | None) -> bool:
        if name != "until-check" or index is None:
            return super().verb(pod, name, node, path, index)
        carry, last = _replay(pod.recorded(), node, path, pod.scope_at(path), index + 1)
        done = last is True and carry.get(node.until) is True
        again = not done and index + 1 < node.tries
        status = Status.RUNNING if again else Status.SUCCEEDED if done else Status.FAILED
        pod.node_event(path, node.type, status, TriesInfo(tries=index + 1).to_json())
        pod.output("again", "true" if again else "false")
        pod.output("next", str(index + 1))
        return done or again

    def render(
        self, renderer: Any, name: str, here: str, node: RetryUntilNode, static: list[str], namer: Any
    ) -> Any:
        return renderer.render_repeat(name, here, node, static, namer, node.branch, "until-check")


def bump(count: int) -> tuple[int, bool]:
    """The branch's task: counts, and is done at 2."""
    return count + 1, count + 1 >= 2


# --- the test ----------------------------------------------------------------------------

PIPELINE = f"""
dag:
  start_at: first
  steps:
    first: {{type: stub, next: retry}}
    retry:
      type: retry-until
      until: done
      tries: 4
      next: success
      branch:
        start_at: bump
        steps:
          bump: {{command: {MODULE}.bump, returns: [count, done], next: success}}
"""
CONFIG = """run_log_store: {type: file, config: {path: .conveyor/runs}}
catalog: {type: file, config: {location: .conveyor/catalog}}
"""
ARGO = """executor: {type: argo, config: {image: ghcr.io/example/conveyor:0.1}}
run_log_store: {type: file, config: {path: .conveyor/runs}}
catalog: {type: file, config: {location: .conveyor/catalog}}
"""


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The plugin installed as pip would: a dist-info folder with its entry point."""
    site = tmp_path / "site"
    dist = site / "retry_until-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: retry-until\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[conveyor.kinds]\nretry-until = {MODULE}:RetryUntilNode\n")
    for folder in (HERE, site):
        monkeypatch.syspath_prepend(str(folder))
    kindreg.reload_plugins()
    paths = [str(site), str(HERE), str(HERE.parent), os.environ.get("PYTHONPATH", "")]
    yield {"PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    monkeypatch.undo()  # the folders leave sys.path: the plugin is uninstalled
    kindreg.MODELS.pop("retry-until", None)
    KINDS.pop("retry-until", None)
    kindreg.reload_plugins()
    assert kindreg.lookup("retry-until") is None


def test_a_plugin_kind_runs_everywhere(plugin: dict[str, str], tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "pipeline.yaml").write_text(PIPELINE)
    (work / "config.yaml").write_text(CONFIG)
    (work / "params.yaml").write_text("count: 0\n")

    # validate: the plugin's model is the schema of its steps
    assert run_cli("validate", "-f", "pipeline.yaml", cwd=work, env=plugin).returncode == 0
    (work / "bad.yaml").write_text(PIPELINE.replace("until: done", "untill: done"))
    bad = run_cli("validate", "-f", "bad.yaml", cwd=work, env=plugin)
    assert bad.returncode == 2 and "dag.steps.retry.untill: unknown key 'untill'" in bad.stderr
    assert "did you mean 'until'?" in bad.stderr and "dag.steps.retry.until: missing key" in bad.stderr
    (work / "typo.yaml").write_text(PIPELINE.replace("type: retry-until", "type: retry-untill"))
    typo = run_cli("validate", "-f", "typo.yaml", cwd=work, env=plugin)
    assert typo.returncode == 2 and "did you mean 'retry-until'?" in typo.stderr

    # schema: `conveyor schema` describes what this installation accepts, the plugin's kind with it
    described = run_cli("schema", cwd=work, env=plugin)
    assert described.returncode == 0, described.stderr
    schema = json.loads(described.stdout)
    assert schema["$defs"]["RetryUntilNode"]["properties"]["type"]["const"] == "retry-until"
    assert (
        "RetryUntilNode"
        not in json.loads(run_cli("schema", "--builtin", cwd=work, env=plugin).stdout)["$defs"]
    )

    # execute: two tries, the second sets done
    run = run_cli(
        "execute",
        "-f",
        "pipeline.yaml",
        "-c",
        "config.yaml",
        "-p",
        "params.yaml",
        "--run-id",
        "toy",
        cwd=work,
        env=plugin,
    )
    assert run.returncode == 0, run.stderr
    store = FileRunLogStore(str(work / ".conveyor/runs"))
    log = store.load("toy")
    record = log.step(["retry"])
    assert record is not None and record.type == "retry-until" and record.status is Status.SUCCEEDED
    assert record.info == {"tries": 2}
    assert [r.path for r in log.steps.values() if r.type == "task"] == [
        ["retry", "0", "bump"],
        ["retry", "1", "bump"],
    ]
    assert log.run.final_parameters == {"count": 2, "done": True}

    # runs show: the kind's summary, its tries listed under it
    shown = run_cli("runs", "show", "toy", "-c", "config.yaml", cwd=work, env=plugin)
    assert shown.returncode == 0 and "2 tries" in shown.stdout
    assert "retry-until" in shown.stdout and "iteration 1" in shown.stdout

    # the UI's run view: traits and label from the kind, tries folded as a pattern
    from conveyor.ui.views import RunView

    view = RunView(store, "toy")
    dag = view.dag(view.pipeline.dag, (), ()) if view.pipeline else {}
    node = next(n for n in dag["nodes"] if n["name"] == "retry")
    assert node["composite"] and node["entry"] == "iteration" and node["shape"] == "repeat"
    assert node["status"] == "succeeded" and node["label"] == "2 tries"
    assert view.pattern(("retry", "1", "bump")) == ("retry", "*", "bump")
    row = next(r for r in view.tree() if r["path"] == ["retry"])
    assert row["summary"] == "2 tries"
    assert view.progress()["steps_succeeded"] == 2

    # diagrams: the shape the model declares
    mermaid = run_cli("graph", "-f", "pipeline.yaml", "--format", "mermaid", cwd=work, env=plugin)
    assert mermaid.returncode == 0 and '(["retry"])' in mermaid.stdout and "until done" in mermaid.stdout

    # Argo: rendered by the kind, its check a kind-verb pod; the pods run it to the same end
    (work / "argo.yaml").write_text(ARGO)
    out = run_cli(
        "render",
        "argo",
        "-f",
        "pipeline.yaml",
        "-c",
        "argo.yaml",
        "-p",
        "params.yaml",
        "-o",
        "manifest.yaml",
        cwd=work,
        env=plugin,
    )
    assert out.returncode == 0, out.stderr
    manifest = yaml.safe_load((work / "manifest.yaml").read_text())
    templates = {t["name"]: t for t in manifest["spec"]["templates"]}
    check = templates["until-check"]
    assert check["container"]["args"][:2] == ["kind-verb", "until-check"]
    assert [p["name"] for p in check["outputs"]["parameters"]] == ["again", "next"]
    sim = Simulation(manifest, work, env=plugin)
    assert sim.run("argo-toy") == "Succeeded"
    argo = store.load("argo-toy")
    assert argo.step(["retry"]).info == {"tries": 2}  # type: ignore[union-attr]
    assert argo.run.final_parameters == {"count": 2, "done": True}
    assert json.dumps(sorted(p.template for p in sim.pods)).count("until-check") == 2
    assert sys.modules.get(MODULE) is not None  # the entry point loaded this file's classes
