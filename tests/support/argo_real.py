"""The real Argo tier's handles for tests: the cluster (control plane + fake kubelet), a
fresh namespace per test, and a workflow driven to its end by the real controller."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support.control_plane import ControlPlane
from support.kube import Obj
from support.kubelet import FakeKubelet, PodRun

WF_API = "argoproj.io/v1alpha1"
DONE = ("Succeeded", "Failed", "Error")


@dataclass
class Cluster:
    plane: ControlPlane
    kubelet: FakeKubelet


@dataclass
class Finished:
    """A workflow driven to its end by the real controller."""

    name: str
    phase: str
    workflow: Obj
    pods: list[PodRun] = field(default_factory=list)

    def nodes(self) -> list[dict[str, Any]]:
        return list(self.workflow.get("status", {}).get("nodes", {}).values())


@dataclass
class Namespace:
    """A fresh namespace per test; its claims map onto the test's directories."""

    cluster: Cluster
    name: str

    def submit(self, manifest: Obj, claims: dict[str, Path], timeout: float = 300) -> Finished:
        self.cluster.kubelet.serve(self.name, claims)
        manifest = dict(manifest, metadata=dict(manifest["metadata"], namespace=self.name))
        kube = self.cluster.plane.kube
        assert kube is not None
        created = kube.create(WF_API, "workflows", manifest, namespace=self.name)
        name = created["metadata"]["name"]
        deadline = time.monotonic() + timeout
        while True:
            wf = kube.get(WF_API, "workflows", name, namespace=self.name)
            phase = wf.get("status", {}).get("phase", "")
            if phase in DONE:
                pods = [r for r in self.cluster.kubelet.runs if r.namespace == self.name]
                errors = [e for e in self.cluster.kubelet.errors if f"pod {self.name}/" in e]
                assert not errors, f"the fake kubelet failed: {errors}"
                return Finished(name, phase, wf, pods)
            self.cluster.plane.controller_alive()
            if time.monotonic() > deadline:
                tail = self.cluster.plane.log_tail("workflow-controller", 40)
                raise AssertionError(
                    f"workflow {name} still {phase or 'unstarted'} after {timeout}s; "
                    f"kubelet errors: {self.cluster.kubelet.errors}\ncontroller:\n{tail}"
                )
            time.sleep(0.5)
