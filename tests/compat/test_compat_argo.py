"""runnable's Argo config where a mapping belongs holds something else: a located refusal,
like every other key conveyor cannot take, not a crash."""

from __future__ import annotations

import pytest

from conveyor.spec.compat import translate
from conveyor.spec.errors import SpecError, format_path
from conveyor.spec.yamlload import Located


def refusals(config: dict[str, object]) -> dict[str, str]:
    data = {"pipeline-executor": {"type": "argo", "config": {"pvc_for_runnable": "data", **config}}}
    with pytest.raises(SpecError) as caught:
        translate(Located(data=data, file="argo.yaml"))
    return {format_path(issue.path): issue.message for issue in caught.value.issues}


def test_workflow_metadata_and_spec_must_be_mappings() -> None:
    assert refusals({"argoWorkflow": {"metadata": "nightly", "spec": ["x"]}}) == {
        '"pipeline-executor".config.argoWorkflow.metadata': "argoWorkflow's metadata must be a mapping",
        '"pipeline-executor".config.argoWorkflow.spec': "argoWorkflow's spec must be a mapping",
    }


def test_a_custom_volume_must_be_a_mapping() -> None:
    volumes = [{"mountPath": "/m", "persistentVolumeClaim": {"claimName": "c"}}, "scratch"]
    assert refusals({"custom_volumes": volumes}) == {
        '"pipeline-executor".config.custom_volumes[1]': "a custom volume must be a mapping"
    }


def test_volumes_secrets_and_a_schedule_are_translated() -> None:
    data = {
        "pipeline-executor": {
            "type": "argo",
            "config": {
                "pvc_for_runnable": "data",
                "custom_volumes": [
                    {"mountPath": "/m", "persistentVolumeClaim": {"claimName": "c", "readOnly": True}}
                ],
                "secrets_from_k8s": [{"environment_variable": "TOKEN", "secret_name": "s"}],
                "cron_schedule": {"schedules": ["0 1 * * *"], "timezone": "UTC"},
            },
        }
    }
    config = translate(Located(data=data, file="argo.yaml")).data["pipeline-executor"]["config"]
    assert config == {
        "pvcs": [
            {"claim": "data", "mount_path": "/tmp"},
            {"claim": "c", "mount_path": "/m", "read_only": True},
        ],
        "secrets": {"TOKEN": {"name": "s", "key": "TOKEN"}},
        "schedule": "0 1 * * *",
        "timezone": "UTC",
    }
