"""The second, slower tier: pods run through Argo's real executor (argoexec init, emissary
and wait, built from upstream's tree by scripts/argo-control-plane/build-argoexec.sh), so
the task results the real controller reads are written by Argo's own code. A conditional
(a chain whose choice step has an output parameter that picks the branch) and a map over
files (the fan-out's output parameter is the controller's withParam) give the same run log,
final parameters and catalog as in-process."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from argo.test_e2e import EXAMPLES, copy, render, run_local, summary
from support import need_service
from support.argo_real import Cluster, Namespace
from support.argoexec_pods import ArgoexecKubelet
from support.control_plane import bin_dir

pytestmark = pytest.mark.argoreal


@pytest.fixture(scope="module")
def argoexec_cluster(cluster: Cluster) -> Iterator[Cluster]:
    """The session's control plane with pods run by ArgoexecKubelet (its own namespaces)."""
    binary = bin_dir() / "argoexec"
    if not binary.is_file():
        need_service(
            "argoreal", f"argoexec missing in {bin_dir()}; run scripts/argo-control-plane/build-argoexec.sh"
        )
    assert cluster.plane.kube is not None
    kubelet = ArgoexecKubelet(
        cluster.plane.kube, env=cluster.kubelet.env, workers=2, argoexec=binary, plane=cluster.plane
    )
    kubelet.start()
    yield Cluster(cluster.plane, kubelet)
    kubelet.stop()


@pytest.fixture
def argoexec_namespace(argoexec_cluster: Cluster) -> Namespace:
    name = "x-" + uuid.uuid4().hex[:10]
    argoexec_cluster.plane.ensure_namespace(name)
    return Namespace(argoexec_cluster, name)


@pytest.mark.parametrize("example", ["conditional", "map_files"])
def test_pods_through_real_argoexec_match_local(
    example: str, argoexec_namespace: Namespace, tmp_path: Path
) -> None:
    argo_dir = copy(EXAMPLES / example, tmp_path, "argo")
    local_dir = copy(EXAMPLES / example, tmp_path, "local")
    done = argoexec_namespace.submit(render(argo_dir), {"conveyor-data": argo_dir})
    assert run_local(local_dir) == 0
    assert done.phase == "Succeeded", (
        [(n["displayName"], n["phase"], n.get("message")) for n in done.nodes()],
        [(p.name, p.exit_code, p.stderr[-3000:]) for p in done.pods if p.exit_code],
    )
    argo, local = summary(argo_dir, done.name), summary(local_dir, "local-run")
    assert argo["status"] == local["status"] == "succeeded"
    assert argo["final"] == local["final"]
    assert argo["steps"] == local["steps"]
    assert argo["catalog"] == local["catalog"]

    kubelet = argoexec_namespace.cluster.kubelet
    assert isinstance(kubelet, ArgoexecKubelet)
    kube = argoexec_namespace.cluster.plane.kube
    assert kube is not None
    for pod in done.pods:
        ran = kubelet.containers[f"{pod.namespace}/{pod.name}"]
        assert sorted((r.name, r.exit_code) for r in ran) == [("init", 0), ("main", 0), ("wait", 0)], ran
        main = next(r for r in ran if r.name == "main")
        assert main.argv[:2] == ["/var/run/argo/argoexec", "emissary"]
        assert main.argv[main.argv.index("--") + 1] == "conveyor"
    results = [kubelet.task_results[f"{p.namespace}/{p.name}"] for p in done.pods]
    for result in results:
        labels = result["metadata"]["labels"]
        assert labels["workflows.argoproj.io/report-outputs-completed"] == "true"
        managers = {m["manager"] for m in result["metadata"].get("managedFields", [])}
        assert managers == {"argoexec"}, managers
    with_outputs = [p for p in done.pods if p.outputs]
    assert with_outputs, "no pod's task result carried output parameters"
    nodes = {n["id"]: n for n in done.nodes()}
    for result in results:
        node = nodes[result["metadata"]["name"]]
        written = {p["name"]: p.get("value") for p in result.get("outputs", {}).get("parameters", [])}
        read = {p["name"]: p.get("value") for p in node.get("outputs", {}).get("parameters", [])}
        assert read == written  # the controller took the outputs argoexec wrote
