"""The manifest's TypedDicts (executors/argo/manifest.py) say they are Argo's own definitions:
each declared key is a property of the definition of the same name in the shipped schema,
and every key the schema requires is required in what conveyor writes."""

from __future__ import annotations

import json
from typing import Any, NotRequired, get_origin, get_type_hints

import pytest

from conveyor.executors.argo import manifest
from conveyor.executors.argo.validate import JSON_SCHEMA

WORKFLOW = "io.argoproj.workflow.v1alpha1."
CORE = "io.k8s.api.core.v1."
WRITTEN = {
    **{
        name: WORKFLOW + name
        for name in [
            *["ValueFrom", "Parameter", "Arguments", "Inputs", "Outputs", "Sequence", "DAGTask"],
            *["DAGTemplate", "Backoff", "RetryStrategy", "SuspendTemplate", "Template", "TTLStrategy"],
            *["PodGC", "WorkflowSpec", "CronWorkflowSpec", "Workflow", "CronWorkflow"],
        ]
    },
    **{
        name: CORE + name
        for name in [
            *["SecretKeySelector", "EnvVarSource", "EnvVar", "ResourceRequirements", "VolumeMount"],
            *["Container", "PersistentVolumeClaimVolumeSource", "Volume"],
        ]
    },
    "ObjectMeta": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
}
#: What the Argo Server answers: read with .get, so nothing is required.
READ = {
    "NodeStatus": WORKFLOW + "NodeStatus",
    "WorkflowStatus": WORKFLOW + "WorkflowStatus",
    "WorkflowObject": WORKFLOW + "Workflow",
}


@pytest.fixture(scope="module")
def definitions() -> dict[str, dict[str, Any]]:
    loaded: dict[str, dict[str, Any]] = json.loads(JSON_SCHEMA.read_text())["definitions"]
    return loaded


def test_every_typed_dict_of_the_module_is_mapped() -> None:
    typed = {
        name
        for name, value in vars(manifest).items()
        if isinstance(value, type) and issubclass(value, dict) and value.__module__ == manifest.__name__
    }
    assert typed == set(WRITTEN) | set(READ)


@pytest.mark.parametrize("name", sorted({**WRITTEN, **READ}))
def test_keys_are_argos(name: str, definitions: dict[str, dict[str, Any]]) -> None:
    where = {**WRITTEN, **READ}[name]
    declared = set(get_type_hints(getattr(manifest, name)))
    properties = set(definitions[where]["properties"])
    assert declared <= properties, f"{name}: not in Argo's {where}: {declared - properties}"


@pytest.mark.parametrize("name", sorted(WRITTEN))
def test_what_argo_requires_is_required(name: str, definitions: dict[str, dict[str, Any]]) -> None:
    required = set(definitions[WRITTEN[name]].get("required", []))
    # __required_keys__ misses NotRequired in postponed annotations (Python 3.11): read the hints
    hints = get_type_hints(getattr(manifest, name), include_extras=True)
    missing = {key for key in required if key not in hints or get_origin(hints[key]) is NotRequired}
    assert not missing, f"{name}: Argo requires {missing}"
