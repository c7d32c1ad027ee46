"""``executor: {type: argo, config: {...}}`` and a step's ``overrides: {argo: {...}}`` (or
``overrides: {argo: NAME}``, naming one of the config's ``overrides``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from conveyor.executors.argo.k8s import env_name_problem, image_problem

#: A mapping keyed by environment variable names (``env``'s values, ``secrets``' references).
Named = TypeVar("Named", bound=Mapping[str, object])


class Strict(BaseModel):
    """Unknown keys are errors here too."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretRef(Strict):
    """An environment variable taken from a Kubernetes secret."""

    name: str
    key: str


class Resources(Strict):
    """Kubernetes resource requests and limits of a pod."""

    requests: dict[str, str] = Field(default_factory=dict)
    limits: dict[str, str] = Field(default_factory=dict)


class PvcMount(Strict):
    """A PersistentVolumeClaim mounted in every pod: where the run log and catalog live."""

    claim: str
    mount_path: str
    sub_path: str | None = None
    read_only: bool = False


class PodSettings(Strict):
    """What a step may override: how its pod is built."""

    image: str | None = None
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = None
    resources: Resources | None = None
    node_selector: dict[str, str] = Field(default_factory=dict)
    #: Kubernetes' own terms (tolerations, volume mounts, volumes) pass into the manifest unread.
    tolerations: list[dict[str, object]] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    secrets: dict[str, SecretRef] = Field(default_factory=dict)
    volume_mounts: list[dict[str, object]] = Field(default_factory=list)

    @field_validator("image")
    @classmethod
    def _image(cls, value: str | None) -> str | None:
        # Kubernetes takes any text here; the kubelet then fails to pull it, at run time.
        problem = image_problem(value) if value is not None else None
        if problem:
            raise PydanticCustomError("image", problem)
        return value

    @field_validator("env", "secrets")
    @classmethod
    def _env_names(cls, value: Named) -> Named:
        problems = [p for p in (env_name_problem(name) for name in value) if p]
        if problems:
            raise PydanticCustomError("env_name", "; ".join(problems))
        return value


class ArgoConfig(PodSettings):
    """The ``argo`` executor's config: the image, and every pod and workflow setting."""

    image: str
    namespace: str = "default"
    service_account: str | None = None
    volumes: list[dict[str, object]] = Field(default_factory=list)
    pvcs: list[PvcMount] = Field(default_factory=list)
    parallelism: Annotated[int, Field(ge=1)] | None = None
    ttl_seconds: Annotated[int, Field(ge=0)] | None = None
    pod_gc: Literal["OnPodCompletion", "OnPodSuccess", "OnWorkflowCompletion", "OnWorkflowSuccess"] | None = (
        None
    )
    active_deadline_seconds: Annotated[int, Field(ge=1)] | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    #: A cron schedule: render a CronWorkflow instead of a Workflow.
    schedule: str | None = None
    timezone: str | None = None
    #: Paths inside the image; by default the paths given to ``conveyor render``.
    pipeline_file: str | None = None
    config_file: str | None = None
    parameters_file: str | None = None
    working_dir: str | None = None
    #: The conveyor command in the image.
    command: list[str] = Field(default_factory=lambda: ["conveyor"])
    #: Pod settings by name, for steps that say ``overrides: {argo: NAME}``: the sizes live
    #: with the cluster's config, the pipeline only names them (runnable's habit).
    overrides: dict[str, PodSettings] = Field(default_factory=dict)


def with_overrides(base: ArgoConfig, settings: PodSettings | None) -> ArgoConfig:
    """The workflow-wide pod settings with a step's overrides on top: each setting the
    override names replaces the base's, one level into mappings (an override's ``limits``
    replace the defaults' ``limits``; the defaults' ``requests`` stay unless it names them)."""
    if settings is None:
        return base
    merged = base.model_dump(exclude_unset=False)
    for key, value in settings.model_dump(exclude_unset=True).items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return ArgoConfig.model_validate(merged)
