"""Pipeline -> Argo Workflow manifest, built as plain data in a fixed key order.

Mapping (one graph = one DAG template, taking the step-path ``prefix`` as input):
- a task or stub -> a DAG task running ``conveyor execute-single-node RUN STEP`` in a pod;
- ``next`` -> ``depends: X.Succeeded``; ``on_failure`` -> ``depends: (X.Failed || X.Errored)``;
- a map -> fan-out (records the items, outputs their count), the branch DAG over
  ``withSequence`` item indices, and fan-in (reduces, records the map's outcome);
- parallel -> a nested DAG of branch DAGs; conditional -> a nested DAG whose ``choose``
  pod outputs the branch index, each branch gated by ``when``;
- a loop -> a recursive DAG: the branch for iteration N, a ``loop-check`` pod that decides
  whether another follows, and the same DAG for N+1 gated by ``when`` on that output;
- reaching ``success`` -> an ``end`` task (a zero-length suspend) that depends on every
  edge into success. Argo decides a DAG's phase from its leaf tasks, and an omitted task
  inherits its parent's failure; with ``end`` as the leaf, a failure handled by an
  ``on_failure`` path leaves the workflow Succeeded, as conveyor records it;
- reaching ``fail`` -> a ``fail`` pod that records it and exits non-zero;
- the run's parameters -> the workflow's ``spec.arguments.parameters``, which ``run-start``
  reads and records (see :mod:`conveyor.executors.argo.arguments`).
Item indices use ``withSequence`` with the count from fan-out rather than ``withParam`` over
a JSON list of indices: Argo keeps only the last 256 kB of a step's output, which a list of
50,000 indices exceeds; the count keeps the manifest and outputs the same size for any map.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

from conveyor.errors import ConveyorError
from conveyor.executors.argo.arguments import check_arguments, parameter_env, workflow_arguments
from conveyor.executors.argo.config import ArgoConfig, PodSettings, with_overrides
from conveyor.executors.argo.manifest import (
    Container,
    CronWorkflow,
    CronWorkflowSpec,
    DAGTask,
    EnvVar,
    Kind,
    Manifest,
    ObjectMeta,
    Parameter,
    ResourceRequirements,
    RetryStrategy,
    Template,
    Volume,
    VolumeMount,
    Workflow,
    WorkflowSpec,
)
from conveyor.executors.argo.names import Namer, sanitize
from conveyor.executors.argo.rules import check_pipeline
from conveyor.executors.contract import POD_CONTRACT
from conveyor.graph.kinds import kind_of
from conveyor.jsontypes import JSONObject
from conveyor.spec.load import LoadedPipeline
from conveyor.spec.models import (
    ConditionalNode,
    Graph,
    LoopNode,
    MapNode,
    NodeBase,
    ParallelNode,
    TaskNode,
    step_in,
)

API_VERSION = "argoproj.io/v1alpha1"
MAX_TASKS = 190  # Argo allows 200 tasks per DAG template; keep room for start/end tasks
RUN_ID = "{{workflow.parameters.run_id}}"
PREFIX = "{{inputs.parameters.prefix}}"
OUTPUTS_DIR = POD_CONTRACT.outputs_dir


class RenderError(ConveyorError):
    """The pipeline cannot be expressed as an Argo Workflow (the message says why)."""


@dataclass(frozen=True)
class Files:
    """Paths inside the image. ``parameters`` is a parameters file there, read by run-start
    under the workflow's arguments (which win); the usual way is the arguments alone."""

    pipeline: str
    config: str
    parameters: str | None = None


@dataclass
class Linkage:
    """How a rendered node connects: where its incoming edges point, and its outcomes."""

    entry: str  # the task a node's incoming edges point at
    succeeded: str  # expression: the node succeeded
    failed: str  # expression: the node failed


def _failed(*tasks: str) -> str:
    return "(" + " || ".join(f"{t}.Failed || {t}.Errored" for t in tasks) + ")"


class Renderer:
    """Builds an Argo Workflow spec from a pipeline: one DAG template per graph, one
    container template per distinct step settings. Each node kind has a ``render_<type>``
    method returning its DAG tasks and how they link; nothing else here knows node kinds."""

    def __init__(
        self, loaded: LoadedPipeline, config: ArgoConfig, files: Files, parameters: JSONObject | None = None
    ) -> None:
        self.loaded = loaded
        self.config = config
        self.files = files
        self.parameters: JSONObject = dict(parameters or {})
        self.templates: dict[str, Template] = {}
        self.template_names = Namer(
            ("main", "exit-handler", "run-start", "end", "fan-out", "fan-in", "choose", "loop-check")
        )
        self._containers: dict[str, str] = {}

    # --- containers --------------------------------------------------------------------------

    def _pod(self, settings: PodSettings | None) -> PodSettings:
        """The workflow-wide pod settings with a step's overrides on top."""
        return with_overrides(self.config, settings)

    def _overrides(self, node: TaskNode | None) -> PodSettings | None:
        """A step's ``overrides.argo``: its own settings, or those the config defines under
        the name it gives (an undefined name was refused by ``check_pipeline``)."""
        given = node.overrides.get("argo") if node is not None else None
        if given is None:
            return None
        if isinstance(given, str):
            return self.config.overrides[given]
        return PodSettings.model_validate(given)

    def _container(self, args: list[str], pod: PodSettings) -> Container:
        container: Container = {"image": pod.image or self.config.image}
        if pod.image_pull_policy:
            container["imagePullPolicy"] = pod.image_pull_policy
        container["command"] = list(self.config.command)
        container["args"] = args
        if self.config.working_dir:
            container["workingDir"] = self.config.working_dir
        env: list[EnvVar] = [{"name": POD_CONTRACT.outputs_env, "value": OUTPUTS_DIR}]
        env += [{"name": k, "value": v} for k, v in sorted(pod.env.items())]
        env += [
            {"name": k, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}}
            for k, ref in sorted(pod.secrets.items())
        ]
        container["env"] = env
        if pod.resources is not None:
            resources: ResourceRequirements = {}
            if pod.resources.requests:
                resources["requests"] = dict(pod.resources.requests)
            if pod.resources.limits:
                resources["limits"] = dict(pod.resources.limits)
            container["resources"] = resources
        mounts: list[VolumeMount | dict[str, object]] = []
        for m in self.config.pvcs:
            mount: VolumeMount = {"name": sanitize(f"pvc-{m.claim}"), "mountPath": m.mount_path}
            if m.sub_path:
                mount["subPath"] = m.sub_path
            if m.read_only:
                mount["readOnly"] = True
            mounts.append(mount)
        mounts += pod.volume_mounts
        if mounts:
            container["volumeMounts"] = mounts
        return container

    def _file_args(self) -> list[str]:
        return ["--file", self.files.pipeline, "--config-file", self.files.config]

    def verb_template(self, node: NodeBase, verb: str) -> str:
        """The container template of a kind's orchestrator-side verb (``kind-verb VERB``),
        with the outputs the kind says the verb writes."""
        return self.step_template(verb, outputs=kind_of(node).verbs[verb], command=[POD_CONTRACT.verb, verb])

    def step_template(
        self,
        kind: str,
        node: TaskNode | None = None,
        outputs: tuple[str, ...] | None = None,
        command: list[str] | None = None,
    ) -> str:
        """A container template shared by every step with the same settings: by default,
        ``execute-single-node`` with the contract's outputs for ``kind``."""
        overrides = self._overrides(node)
        retry = node.retry if node is not None else None
        timeout = node.timeout_seconds if node is not None else None
        signature = json.dumps(
            [
                kind,
                overrides.model_dump(mode="json") if overrides else None,
                retry.model_dump() if retry else None,
                timeout,
            ],
            sort_keys=True,
        )
        if signature in self._containers:
            return self._containers[signature]
        label = (
            kind if signature == json.dumps([kind, None, None, None], sort_keys=True) else f"{kind}-custom"
        )
        name = kind if label == kind else self.template_names.name(f"{label}-{len(self._containers)}")
        args = [*(command or [POD_CONTRACT.step]), RUN_ID, "{{inputs.parameters.step}}", *self._file_args()]
        pod = self._pod(overrides)
        template: Template = {"name": name, "inputs": {"parameters": [{"name": "step"}]}}
        if outputs is None:
            outputs = dict(POD_CONTRACT.outputs).get(kind, ())
        if outputs:
            template["outputs"] = {
                "parameters": [{"name": o, "valueFrom": {"path": f"{OUTPUTS_DIR}/{o}"}} for o in outputs]
            }
        if pod.node_selector:
            template["nodeSelector"] = dict(pod.node_selector)
        if pod.tolerations:
            template["tolerations"] = list(pod.tolerations)
        if timeout is not None:
            template["activeDeadlineSeconds"] = max(1, math.ceil(timeout))
        if retry is not None and retry.attempts > 1:
            strategy: RetryStrategy = {"limit": str(retry.attempts - 1), "retryPolicy": "Always"}
            if retry.backoff_seconds:
                strategy["backoff"] = {"duration": f"{retry.backoff_seconds:g}s", "factor": "2"}
            template["retryStrategy"] = strategy
        template["container"] = self._container(args, pod)
        self.templates[name] = template
        self._containers[signature] = name
        return name

    # --- graphs ------------------------------------------------------------------------------

    def _task(self, name: str, template: str, step: str | None = None, prefix: str | None = None) -> DAGTask:
        task: DAGTask = {"name": name, "template": template}
        params: list[Parameter] = []
        if step is not None:
            params.append({"name": "step", "value": step})
        if prefix is not None:
            params.append({"name": "prefix", "value": prefix})
        if params:
            task["arguments"] = {"parameters": params}
        return task

    def _node(
        self, name: str, node: NodeBase, static: list[str], namer: Namer, root: bool
    ) -> tuple[list[DAGTask], Linkage]:
        here = name if root else f"{PREFIX}/{name}"
        render = getattr(self, f"render_{getattr(node, 'type', 'task')}", None)
        if render is None:  # a plugin's kind renders itself with the helpers here
            made: tuple[list[DAGTask], Linkage] | None = kind_of(node).render(
                self, name, here, node, static, namer
            )
            if made is None:
                raise RenderError(f"cannot render a step of type {getattr(node, 'type', '?')}")
            return made
        result: tuple[list[DAGTask], Linkage] = render(name, here, node, static, namer)
        return result

    def _single(self, task_name: str, template: str, **params: str) -> tuple[list[DAGTask], Linkage]:
        return [self._task(task_name, template, **params)], Linkage(
            task_name, f"{task_name}.Succeeded", _failed(task_name)
        )

    def render_task(
        self, name: str, here: str, node: TaskNode, static: list[str], namer: Namer
    ) -> tuple[list[DAGTask], Linkage]:
        """A task: one pod running ``execute-single-node`` with the task's own settings."""
        return self._single(namer.name(name), self.step_template("step", node), step=here)

    def render_stub(
        self, name: str, here: str, node: NodeBase, static: list[str], namer: Namer
    ) -> tuple[list[DAGTask], Linkage]:
        """A stub: a pod that records it as succeeded."""
        return self._single(namer.name(name), self.step_template("step"), step=here)

    def render_map(
        self, name: str, here: str, node: MapNode, static: list[str], namer: Namer
    ) -> tuple[list[DAGTask], Linkage]:
        """A map: fan-out, the branch DAG once per item index, fan-in."""
        fan_out, items, fan_in = (
            namer.name(f"{name}-fan-out"),
            namer.name(f"{name}-items"),
            namer.name(f"{name}-fan-in"),
        )
        branch = self.dag_template(node.branch, [*static, name, "branch"])
        out_task = self._task(fan_out, self.verb_template(node, "fan-out"), step=here)
        item_task = self._task(items, branch, prefix=f"{here}/{{{{item}}}}")
        item_task["depends"] = f"{fan_out}.Succeeded"
        if node.partition is not None:
            # Partitions are few (their manifests hold the files): a list of their indices.
            item_task["withParam"] = f"{{{{tasks.{fan_out}.outputs.parameters.indices}}}}"
        else:
            item_task["withSequence"] = {"count": f"{{{{tasks.{fan_out}.outputs.parameters.count}}}}"}
        in_task = self._task(fan_in, self.verb_template(node, "fan-in"), step=here)
        in_task["depends"] = " || ".join(
            f"{items}.{phase}" for phase in ("Succeeded", "Failed", "Errored", "Skipped")
        )
        return [out_task, item_task, in_task], Linkage(
            fan_out, f"{fan_in}.Succeeded", _failed(fan_out, fan_in)
        )

    def render_parallel(
        self, name: str, here: str, node: ParallelNode, static: list[str], namer: Namer
    ) -> tuple[list[DAGTask], Linkage]:
        """A parallel: a nested DAG of its branch DAGs."""
        return self._single(namer.name(name), self._parallel(node, [*static, name]), prefix=here)

    def render_conditional(
        self, name: str, here: str, node: ConditionalNode, static: list[str], namer: Namer
    ) -> tuple[list[DAGTask], Linkage]:
        """A conditional: a ``choose`` pod, then each branch DAG gated by ``when``."""
        return self._single(namer.name(name), self._conditional(node, [*static, name]), prefix=here)

    def render_loop(
        self, name: str, here: str, node: LoopNode, static: list[str], namer: Namer
    ) -> tuple[list[DAGTask], Linkage]:
        """A loop: a recursive DAG template, entered at iteration 0."""
        return self.render_repeat(name, here, node, static, namer, node.branch, "loop-check")

    def render_repeat(
        self, name: str, here: str, node: NodeBase, static: list[str], namer: Namer, branch: Graph, verb: str
    ) -> tuple[list[DAGTask], Linkage]:
        """A node that runs ``branch`` again and again (a loop; a plugin's kind may use it
        too): a recursive DAG template, entered at iteration 0, whose check is the kind's
        ``verb`` (writing ``again`` and ``next``)."""
        task = self._task(namer.name(name), self._repeat(node, [*static, name], branch, verb), prefix=here)
        task["arguments"]["parameters"].append({"name": "iteration", "value": "0"})
        return [task], Linkage(task["name"], f"{task['name']}.Succeeded", _failed(task["name"]))

    def _repeat(self, node: NodeBase, static: list[str], branch: Graph, verb: str) -> str:
        """One iteration: the branch DAG, then the check (``loop-check`` for a loop: records
        the loop, outputs whether another iteration follows), then this same template for
        the next index, gated by ``when``. The check refuses to go past ``max_iterations``,
        which bounds the recursion's depth."""
        name = self.template_names.name("-".join(["loop", *static]))
        iteration = f"{PREFIX}/{{{{inputs.parameters.iteration}}}}"
        body = self._task("body", self.dag_template(branch, [*static, "branch"]), prefix=iteration)
        check = self._task("check", self.verb_template(node, verb), step=iteration)
        check["depends"] = "body.Succeeded || body.Failed || body.Errored"
        again = self._task("again", name, prefix=PREFIX)
        again["arguments"]["parameters"].append(
            {"name": "iteration", "value": "{{tasks.check.outputs.parameters.next}}"}
        )
        again["depends"] = "check.Succeeded"
        again["when"] = "{{tasks.check.outputs.parameters.again}} == true"
        self.templates[name] = {
            "name": name,
            "inputs": {"parameters": [{"name": "prefix"}, {"name": "iteration"}]},
            "dag": {"failFast": False, "tasks": [body, check, again]},
        }
        return name

    def _parallel(self, node: ParallelNode, static: list[str]) -> str:
        namer = Namer()
        tasks = [
            self._task(namer.name(key), self.dag_template(branch, [*static, key]), prefix=f"{PREFIX}/{key}")
            for key, branch in node.branches.items()
        ]
        return self._dag(static, tasks, "parallel")

    def _conditional(self, node: ConditionalNode, static: list[str]) -> str:
        namer = Namer(("choose",))
        tasks = [self._task("choose", self.step_template("choose"), step=PREFIX)]
        for index, (key, branch) in enumerate(node.branches.items()):
            task = self._task(
                namer.name(key), self.dag_template(branch, [*static, key]), prefix=f"{PREFIX}/{key}"
            )
            task["depends"] = "choose.Succeeded"
            task["when"] = f"{{{{tasks.choose.outputs.parameters.branch}}}} == {index}"
            tasks.append(task)
        return self._dag(static, tasks, "conditional")

    def dag_template(self, graph: Graph, static: list[str], root: bool = False) -> str:
        namer = Namer(("end", "fail", "run-start"))
        tasks: list[DAGTask] = []
        links: dict[str, Linkage] = {}
        if root:
            tasks.append({"name": "run-start", "template": "run-start"})
        for name, node in graph.steps.items():
            if node.ends is not None:  # success and fail become the `end` and `fail` tasks
                continue
            made, links[name] = self._node(name, node, static, namer, root)
            tasks.extend(made)
        incoming: dict[str, list[str]] = {}
        if root:
            incoming[graph.start_at] = ["run-start.Succeeded"]
        for name, node in graph.steps.items():
            for succeeded in (True, False):
                target = node.following(succeeded)
                if target is not None:
                    link = links[name].succeeded if succeeded else links[name].failed
                    incoming.setdefault(self._target(graph, target), []).append(link)
        by_name = {t["name"]: t for t in tasks}
        for name, exprs in incoming.items():
            if name in ("success", "fail"):
                continue
            entry = by_name[links[name].entry]
            entry["depends"] = " || ".join(exprs) if len(exprs) == 1 else " || ".join(f"({e})" for e in exprs)
        if "success" in incoming:
            end: DAGTask = {"name": "end", "template": self._end(), "depends": self._any(incoming["success"])}
            tasks.append(end)
        if "fail" in incoming:
            fail = self._task("fail", self.step_template("step"), step="fail" if root else f"{PREFIX}/fail")
            fail["depends"] = self._any(incoming["fail"])
            tasks.append(fail)
        return self._dag(static, tasks, "dag", root=root)

    @staticmethod
    def _any(exprs: list[str]) -> str:
        return exprs[0] if len(exprs) == 1 else " || ".join(f"({e})" for e in exprs)

    @staticmethod
    def _target(graph: Graph, name: str) -> str:
        node = step_in(graph, name)
        if node is not None and node.ends is not None:
            return "success" if node.ends else "fail"
        return name

    def _end(self) -> str:
        if "end" not in self.templates:
            self.templates["end"] = {"name": "end", "suspend": {"duration": "0"}}
        return "end"

    def _dag(self, static: list[str], tasks: list[DAGTask], kind: str, root: bool = False) -> str:
        name = "main" if root else self.template_names.name("-".join([kind, *static]))
        if len(tasks) > MAX_TASKS:
            tasks = self._split(name, tasks)
        template: Template = {"name": name}
        if not root:
            template["inputs"] = {"parameters": [{"name": "prefix"}]}
        template["dag"] = {"failFast": False, "tasks": tasks}
        self.templates[name] = template
        return name

    def _split(self, name: str, tasks: list[DAGTask]) -> list[DAGTask]:
        """Nest a long chain in segments of at most MAX_TASKS tasks (Argo's limit is 200).

        Only chains split cleanly: each segment may depend on the one before it through
        its first task alone. Other shapes are refused with a message.
        """
        chunks = [tasks[i : i + MAX_TASKS] for i in range(0, len(tasks), MAX_TASKS)]
        parents: list[DAGTask] = []
        for index, chunk in enumerate(chunks):
            names = {t["name"] for t in chunk}
            first = chunk[0]
            previous = chunks[index - 1][-1]["name"] if index else None
            for task in chunk:
                refs = _references(task.get("depends", ""))
                outside = refs - names
                if not outside:
                    continue
                if task is first and outside == {previous} and task["depends"] == f"{previous}.Succeeded":
                    continue
                raise RenderError(
                    f"{name} has {len(tasks)} tasks, over Argo's limit of 200 per DAG, and cannot be "
                    f"split into chained segments: '{task['name']}' depends on {sorted(outside)} in an "
                    "earlier segment. Group steps into parallel branches or maps to keep each graph "
                    "under 200 steps."
                )
            if previous is not None:
                first.pop("depends", None)
            segment = self.template_names.name(f"{name}-part-{index + 1}")
            self.templates[segment] = {
                "name": segment,
                "inputs": {"parameters": [{"name": "prefix"}]},
                "dag": {"failFast": False, "tasks": chunk},
            }
            parent = self._task(f"part-{index + 1}", segment, prefix=PREFIX)
            if index:
                parent["depends"] = f"part-{index}.Succeeded"
            parents.append(parent)
        return parents

    # --- the manifest ------------------------------------------------------------------------

    def _fixed_templates(self) -> None:
        start_args = [POD_CONTRACT.run_start, RUN_ID, *self._file_args()]
        if self.files.parameters:
            start_args += ["--parameters-file", self.files.parameters]
        start = self._container(start_args, self.config)
        start["env"] = parameter_env(self.parameters) + start.get("env", [])
        self.templates["run-start"] = {"name": "run-start", "container": start}
        end_args = [POD_CONTRACT.run_end, RUN_ID, "--status", "{{workflow.status}}", *self._file_args()]
        self.templates["exit-handler"] = {
            "name": "exit-handler",
            "container": self._container(end_args, self.config),
        }

    def spec(self) -> WorkflowSpec:
        self._fixed_templates()
        self.dag_template(self.loaded.pipeline.dag, [], root=True)
        cfg = self.config
        spec: WorkflowSpec = {"entrypoint": "main", "onExit": "exit-handler"}
        spec["arguments"] = {"parameters": workflow_arguments(self.parameters)}
        if cfg.service_account:
            spec["serviceAccountName"] = cfg.service_account
        if cfg.parallelism:
            spec["parallelism"] = cfg.parallelism
        if cfg.active_deadline_seconds:
            spec["activeDeadlineSeconds"] = cfg.active_deadline_seconds
        if cfg.ttl_seconds is not None:
            spec["ttlStrategy"] = {"secondsAfterCompletion": cfg.ttl_seconds}
        if cfg.pod_gc:
            spec["podGC"] = {"strategy": cfg.pod_gc}
        volumes: list[Volume | dict[str, object]] = [
            {"name": sanitize(f"pvc-{m.claim}"), "persistentVolumeClaim": {"claimName": m.claim}}
            for m in cfg.pvcs
        ]
        volumes += cfg.volumes
        if volumes:
            spec["volumes"] = volumes
        order = ["main", "run-start", "exit-handler"]
        spec["templates"] = [self.templates[n] for n in order] + [
            t for n, t in self.templates.items() if n not in order
        ]
        return spec

    def metadata(self, generate: bool) -> ObjectMeta:
        name = sanitize(self.loaded.name, 50)
        meta: ObjectMeta = {"generateName": f"{name}-"} if generate else {"name": name}
        meta["namespace"] = self.config.namespace
        meta["labels"] = {"conveyor/pipeline": name, **self.config.labels}
        meta["annotations"] = {"conveyor/pipeline-hash": self.loaded.hash, **self.config.annotations}
        return meta


def _references(depends: str) -> set[str]:
    return set(
        re.findall(r"([A-Za-z0-9][-A-Za-z0-9]*)\.(?:Succeeded|Failed|Errored|Skipped|Omitted)", depends)
    )


def render(
    loaded: LoadedPipeline,
    config: ArgoConfig,
    files: Files,
    kind: Kind = "Workflow",
    parameters: JSONObject | None = None,
    source: str | None = None,
) -> Manifest:
    """The manifest: a Workflow, a WorkflowTemplate, or (with a schedule) a CronWorkflow.
    ``parameters`` become the workflow's arguments, the defaults a submitter may change
    (``source`` names their file in errors). What Argo or Kubernetes would refuse or
    rewrite is a located SpecError first."""
    check_pipeline(loaded, config)
    check_arguments(parameters or {}, config.env, source)
    renderer = Renderer(loaded, config, files, parameters)
    spec = renderer.spec()
    if config.schedule and kind == "Workflow":
        kind = "CronWorkflow"
    if kind == "CronWorkflow":
        if not config.schedule:
            raise RenderError("a CronWorkflow needs executor.config.schedule, e.g. '0 2 * * *'")
        cron: CronWorkflowSpec
        if config.timezone:
            cron = {"schedules": [config.schedule], "timezone": config.timezone, "workflowSpec": spec}
        else:
            cron = {"schedules": [config.schedule], "workflowSpec": spec}
        scheduled: CronWorkflow = {
            "apiVersion": API_VERSION,
            "kind": kind,
            "metadata": renderer.metadata(generate=False),
            "spec": cron,
        }
        return scheduled
    workflow: Workflow = {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": renderer.metadata(generate=kind == "Workflow"),
        "spec": spec,
    }
    return workflow
