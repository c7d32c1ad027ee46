"""The control plane reports the versions versions.env pins: what a client such as
``kubectl version`` or Argo's controller reads from ``/version`` is the Kubernetes built."""

from __future__ import annotations

import pytest

from support.argo_real import Cluster
from support.control_plane import pinned_versions

pytestmark = pytest.mark.argoreal


def test_the_api_server_reports_the_pinned_kubernetes_version(cluster: Cluster) -> None:
    kube = cluster.plane.kube
    assert kube is not None
    reported = kube.client.get("/version").json()
    pinned = pinned_versions()["KUBERNETES_VERSION"]
    assert reported["gitVersion"] == pinned, reported
    assert (reported["major"], reported["minor"]) == ("1", pinned.split(".")[1])
    assert reported["gitTreeState"] == "clean"
