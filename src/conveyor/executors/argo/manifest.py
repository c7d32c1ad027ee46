"""The parts of an Argo manifest that conveyor writes or reads, as TypedDicts.

The names and nesting are Argo's own: each class is the definition of the same name in
Argo's JSON schema, shipped in ``schemas/argo-workflows-schema.json`` (see its README):
``io.argoproj.workflow.v1alpha1.*`` for the workflow's parts, ``io.k8s.api.core.v1.*`` for
the container's, and ``io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta`` for metadata. Only
the fields conveyor uses are declared; a key is required where the schema requires it, and
also where conveyor always writes it and reads it back: a template's ``name`` (tasks refer to
templates by name) and a manifest's ``apiVersion`` and ``kind``. Argo's ``IntOrString``
fields are declared as conveyor writes them: strings (a retry limit, a sequence count, as
Argo's docs advise), except a template's ``activeDeadlineSeconds``, a number of seconds.

A TypedDict is a plain dict at run time, so the manifest keeps the order in which the
renderer writes its keys (golden files diff well). What a user writes in Kubernetes' own
terms (tolerations, volumes, extra volume mounts) is passed on unread as ``dict[str, object]``.
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict

# --- parameters ------------------------------------------------------------------------------


class ValueFrom(TypedDict):
    """Where an output parameter's value is read: a file the pod writes."""

    path: str


class Parameter(TypedDict):
    """A named input, output or argument; arguments and outputs carry its value."""

    name: str
    value: NotRequired[str]
    valueFrom: NotRequired[ValueFrom]


class Arguments(TypedDict):
    """The parameters a task passes to its template, or a workflow to its entrypoint."""

    parameters: list[Parameter]


class Inputs(TypedDict):
    """The parameters a template takes."""

    parameters: list[Parameter]


class Outputs(TypedDict):
    """The parameters a template's pod writes (item counts, branch indices)."""

    parameters: list[Parameter]


# --- DAGs ------------------------------------------------------------------------------------


class Sequence(TypedDict):
    """``withSequence``: run a task once per number; ``count`` is an expression."""

    count: str


class DAGTask(TypedDict):
    """One task of a DAG template: the template it runs, and when."""

    name: str
    template: NotRequired[str]
    arguments: NotRequired[Arguments]
    depends: NotRequired[str]
    when: NotRequired[str]
    withParam: NotRequired[str]
    withSequence: NotRequired[Sequence]


class DAGTemplate(TypedDict):
    """A template's DAG: its tasks, run as their ``depends`` allow."""

    failFast: NotRequired[bool]
    tasks: list[DAGTask]


# --- containers ------------------------------------------------------------------------------


class SecretKeySelector(TypedDict):
    """A key of a Kubernetes secret."""

    name: NotRequired[str]
    key: str


class EnvVarSource(TypedDict):
    """Where an environment variable's value comes from, when not written in the manifest."""

    secretKeyRef: SecretKeySelector


class EnvVar(TypedDict):
    """An environment variable of a container: a value, or a secret's key."""

    name: str
    value: NotRequired[str]
    valueFrom: NotRequired[EnvVarSource]


class ResourceRequirements(TypedDict):
    """A container's requests and limits (Kubernetes quantities by resource name)."""

    requests: NotRequired[dict[str, str]]
    limits: NotRequired[dict[str, str]]


class VolumeMount(TypedDict):
    """A volume mounted in a container (conveyor writes these for the config's ``pvcs``)."""

    name: str
    mountPath: str
    subPath: NotRequired[str]
    readOnly: NotRequired[bool]


class Container(TypedDict):
    """The pod's main container: the conveyor command and its settings."""

    image: str
    imagePullPolicy: NotRequired[str]
    command: NotRequired[list[str]]
    args: NotRequired[list[str]]
    workingDir: NotRequired[str]
    env: NotRequired[list[EnvVar]]
    resources: NotRequired[ResourceRequirements]
    volumeMounts: NotRequired[list[VolumeMount | dict[str, object]]]


class PersistentVolumeClaimVolumeSource(TypedDict):
    """A volume backed by a PersistentVolumeClaim."""

    claimName: str


class Volume(TypedDict):
    """A volume of the workflow's pods (conveyor writes these for the config's ``pvcs``)."""

    name: str
    persistentVolumeClaim: NotRequired[PersistentVolumeClaimVolumeSource]


# --- templates and the workflow --------------------------------------------------------------


class Backoff(TypedDict):
    """How long to wait between retries."""

    duration: NotRequired[str]
    factor: NotRequired[str]


class RetryStrategy(TypedDict):
    """How a template's pod is retried: ``limit`` retries, so ``limit + 1`` attempts."""

    limit: NotRequired[str]
    retryPolicy: NotRequired[str]
    backoff: NotRequired[Backoff]


class SuspendTemplate(TypedDict):
    """A pause; conveyor's ``end`` task is one of zero length."""

    duration: NotRequired[str]


class Template(TypedDict):
    """A template: a container, a DAG or a suspend, with its inputs and outputs."""

    name: str
    inputs: NotRequired[Inputs]
    outputs: NotRequired[Outputs]
    nodeSelector: NotRequired[dict[str, str]]
    tolerations: NotRequired[list[dict[str, object]]]
    activeDeadlineSeconds: NotRequired[int]
    retryStrategy: NotRequired[RetryStrategy]
    container: NotRequired[Container]
    dag: NotRequired[DAGTemplate]
    suspend: NotRequired[SuspendTemplate]


class TTLStrategy(TypedDict):
    """When a finished workflow is deleted."""

    secondsAfterCompletion: NotRequired[int]


class PodGC(TypedDict):
    """When a workflow's pods are deleted."""

    strategy: NotRequired[str]


class WorkflowSpec(TypedDict):
    """A workflow's spec: its templates, entrypoint, exit handler and workflow-wide settings."""

    entrypoint: NotRequired[str]
    onExit: NotRequired[str]
    arguments: NotRequired[Arguments]
    serviceAccountName: NotRequired[str]
    parallelism: NotRequired[int]
    activeDeadlineSeconds: NotRequired[int]
    ttlStrategy: NotRequired[TTLStrategy]
    podGC: NotRequired[PodGC]
    volumes: NotRequired[list[Volume | dict[str, object]]]
    templates: NotRequired[list[Template]]


class CronWorkflowSpec(TypedDict):
    """A CronWorkflow's spec: when to run, and the workflow to run."""

    schedules: list[str]
    timezone: NotRequired[str]
    workflowSpec: WorkflowSpec


class ObjectMeta(TypedDict):
    """The metadata conveyor sets, and reads back from the Argo Server."""

    name: NotRequired[str]
    generateName: NotRequired[str]
    namespace: NotRequired[str]
    labels: NotRequired[dict[str, str]]
    annotations: NotRequired[dict[str, str]]


class Workflow(TypedDict):
    """A Workflow or a WorkflowTemplate (the same spec, submitted to another collection)."""

    apiVersion: str
    kind: Literal["Workflow", "WorkflowTemplate"]
    metadata: ObjectMeta
    spec: WorkflowSpec


class CronWorkflow(TypedDict):
    """A CronWorkflow: a Workflow's spec run on a schedule."""

    apiVersion: str
    kind: Literal["CronWorkflow"]
    metadata: ObjectMeta
    spec: CronWorkflowSpec


#: What ``conveyor render argo`` writes.
Manifest = Workflow | CronWorkflow
#: The kinds of manifest conveyor renders.
Kind = Literal["Workflow", "WorkflowTemplate", "CronWorkflow"]
#: Each kind by its name, to turn a name given as text into a :data:`Kind`.
KINDS: dict[str, Kind] = {
    "Workflow": "Workflow",
    "WorkflowTemplate": "WorkflowTemplate",
    "CronWorkflow": "CronWorkflow",
}


# --- what the Argo Server answers ------------------------------------------------------------


class NodeStatus(TypedDict, total=False):
    """One node of a running workflow (a pod, a retry, a DAG), as the Argo Server reports it."""

    name: str
    displayName: str
    type: str
    phase: str
    startedAt: str | None
    finishedAt: str | None
    message: str


class WorkflowStatus(TypedDict, total=False):
    """A workflow's phase and its nodes by id."""

    phase: str
    nodes: dict[str, NodeStatus]


class WorkflowObject(TypedDict, total=False):
    """A workflow as the Argo Server returns it (created, fetched or acted on). The answer
    is not checked against this shape: it is read with ``.get`` and defaults."""

    metadata: ObjectMeta
    status: WorkflowStatus
