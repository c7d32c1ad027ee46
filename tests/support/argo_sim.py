"""Runs a rendered Argo Workflow's pods as local processes, in an order the manifest allows.

No Kubernetes runs here, so this follows the manifest the way Argo's controller would for
the features conveyor uses: DAG ``depends`` (with bare names, phases, &&, ||, !, parens),
``when``, ``withSequence``/``withParam``, ``retryStrategy.limit``, ``activeDeadlineSeconds``,
input/output parameters (``valueFrom.path``), ``{{...}}`` in a container's args and env
values, the workflow's arguments as ``workflow.parameters`` (substituted once more, as Argo
substitutes globals in the spec before templates), suspend templates, ``onExit`` with
``{{workflow.status}}``, and Argo's DAG phase rule: the phase comes from the leaf tasks, an
omitted task inherits its parents' failure, a skipped one counts as success.
Tasks run one at a time; all pods share one working directory, as a PVC would.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DONE = {"Succeeded", "Failed", "Errored", "Skipped", "Omitted"}
VAR = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}")


def substitute(text: str, values: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise KeyError(f"unresolved {{{{{key}}}}}")
        return values[key]

    return VAR.sub(replace, text)


@dataclass
class Pod:
    template: str
    args: list[str]
    returncode: int
    attempt: int


@dataclass
class Simulation:
    manifest: dict[str, Any]
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    pods: list[Pod] = field(default_factory=list)
    globals: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        spec = self.manifest["spec"]
        if self.manifest["kind"] == "CronWorkflow":
            spec = spec["workflowSpec"]
        self.spec = spec
        self.templates = {t["name"]: t for t in spec["templates"]}
        for param in spec.get("arguments", {}).get("parameters", []):
            self.globals[f"workflow.parameters.{param['name']}"] = param.get("value", "")

    def run(self, name: str) -> str:
        """Run the workflow named ``name``; return its phase."""
        self.globals["workflow.name"] = name
        for key, value in list(self.globals.items()):
            self.globals[key] = substitute(value, self.globals) if "{{" in value else value
        phase, _ = self.run_template(self.spec["entrypoint"], {})
        status = "Succeeded" if phase in ("Succeeded", "Skipped") else phase
        if "onExit" in self.spec:
            self.globals["workflow.status"] = status
            self.run_template(self.spec["onExit"], {})
        return status

    def run_template(self, name: str, inputs: dict[str, str]) -> tuple[str, dict[str, str]]:
        template = self.templates[name]
        values = dict(self.globals)
        values.update({f"inputs.parameters.{k}": v for k, v in inputs.items()})
        if "dag" in template:
            return self.run_dag(template["dag"], values), {}
        if "suspend" in template:
            return "Succeeded", {}
        if "container" in template:
            return self.run_container(template, values)
        raise ValueError(f"template {name} has a type the simulation does not know")

    def run_container(self, template: dict[str, Any], values: dict[str, str]) -> tuple[str, dict[str, str]]:
        container = template["container"]
        assert container["command"] == ["conveyor"], container["command"]
        args = [substitute(a, values) for a in container["args"]]
        strategy = template.get("retryStrategy") or {}
        tries = 1 + int(strategy.get("limit", "0"))
        timeout = template.get("activeDeadlineSeconds")
        for attempt in range(1, tries + 1):
            with tempfile.TemporaryDirectory(prefix="pod-") as pod_dir:
                env = dict(os.environ, **self.env)
                for item in container.get("env", []):
                    if "value" in item:
                        env[item["name"]] = substitute(item["value"], values)
                outputs_root = env.get("CONVEYOR_OUTPUTS_DIR", "/tmp/conveyor-outputs")
                env["CONVEYOR_OUTPUTS_DIR"] = pod_dir
                try:
                    proc = subprocess.run(
                        [sys.executable, "-m", "conveyor.cli", *args],
                        cwd=self.workdir,
                        env=env,
                        capture_output=True,
                        text=True,
                        timeout=timeout,
                    )
                    code = proc.returncode
                except subprocess.TimeoutExpired:
                    code = -9
                self.pods.append(Pod(template["name"], args, code, attempt))
                if code == 0:
                    outputs = {}
                    for param in template.get("outputs", {}).get("parameters", []):
                        path = param["valueFrom"]["path"].replace(outputs_root, pod_dir, 1)
                        outputs[param["name"]] = Path(path).read_text().strip()
                    return "Succeeded", outputs
        return "Failed", {}

    # --- DAGs --------------------------------------------------------------------------------

    def run_dag(self, dag: dict[str, Any], values: dict[str, str]) -> str:
        tasks = {t["name"]: t for t in dag["tasks"]}
        phases: dict[str, str] = {}
        outputs: dict[str, dict[str, str]] = {}
        while len(phases) < len(tasks):
            progressed = False
            for name, task in tasks.items():
                if name in phases:
                    continue
                refs = self.references(task.get("depends", ""), tasks)
                if any(phases.get(r) not in DONE for r in refs):
                    continue
                progressed = True
                if task.get("depends") and not self.depends(task["depends"], phases, tasks):
                    phases[name] = "Omitted"
                    break
                local = dict(values)
                for task_name, outs in outputs.items():
                    for key, value in outs.items():
                        local[f"tasks.{task_name}.outputs.parameters.{key}"] = value
                if "when" in task and not self.when(substitute(task["when"], local)):
                    phases[name] = "Skipped"
                    break
                phases[name], outputs[name] = self.run_task(task, local)
                break
            if not progressed:
                raise RuntimeError(f"DAG is stuck: {sorted(set(tasks) - set(phases))}")
        return self.assess(tasks, phases)

    def run_task(self, task: dict[str, Any], values: dict[str, str]) -> tuple[str, dict[str, str]]:
        params = task.get("arguments", {}).get("parameters", [])
        if "withSequence" in task or "withParam" in task:
            if "withSequence" in task:
                items = [str(i) for i in range(int(substitute(str(task["withSequence"]["count"]), values)))]
            else:
                items = [
                    json.dumps(v) if not isinstance(v, str) else v
                    for v in json.loads(substitute(task["withParam"], values))
                ]
            if not items:
                return "Skipped", {}
            results = []
            for item in items:
                inputs = {p["name"]: substitute(p["value"], {**values, "item": item}) for p in params}
                results.append(self.run_template(task["template"], inputs)[0])
            return ("Succeeded" if all(r in ("Succeeded", "Skipped") for r in results) else "Failed"), {}
        inputs = {p["name"]: substitute(p["value"], values) for p in params}
        return self.run_template(task["template"], inputs)

    @staticmethod
    def references(depends: str, tasks: dict[str, Any]) -> set[str]:
        names = set(re.findall(r"[A-Za-z0-9][-A-Za-z0-9]*", depends))
        return {n for n in names if n in tasks}

    @staticmethod
    def depends(expr: str, phases: dict[str, str], tasks: dict[str, Any]) -> bool:
        def phase_of(match: re.Match[str]) -> str:
            name, phase = match.group(1), match.group(2)
            if phase is None:
                return str(phases[name] in ("Succeeded", "Skipped"))
            if phase == "AnySucceeded":
                return str(phases[name] == "Succeeded")
            return str(phases[name] == phase)

        pattern = r"([A-Za-z0-9][-A-Za-z0-9]*)(?:\.(Succeeded|Failed|Errored|Skipped|Omitted|AnySucceeded))?"
        python = re.sub(pattern, lambda m: phase_of(m) if m.group(1) in tasks else m.group(0), expr)
        python = python.replace("&&", " and ").replace("||", " or ").replace("!", " not ")
        return bool(eval(python, {"__builtins__": {}}, {}))

    @staticmethod
    def when(expr: str) -> bool:
        left, op, right = re.split(r"\s*(==|!=)\s*", expr.strip(), maxsplit=1)
        return (left.strip("'\" ") == right.strip("'\" ")) == (op == "==")

    def assess(self, tasks: dict[str, Any], phases: dict[str, str]) -> str:
        """Argo's rule: leaves decide; omitted tasks inherit failure from their parents."""
        parents = {name: self.references(t.get("depends", ""), tasks) for name, t in tasks.items()}
        referenced = set().union(*parents.values()) if parents else set()
        leaves = [n for n in tasks if n not in referenced]

        def effective(name: str) -> str:
            phase = phases[name]
            if phase == "Omitted":
                inherited = [effective(p) for p in parents[name]]
                return "Failed" if any(p in ("Failed", "Errored") for p in inherited) else "Succeeded"
            return "Succeeded" if phase == "Skipped" else phase

        return "Failed" if any(effective(n) in ("Failed", "Errored") for n in leaves) else "Succeeded"
