"""The real Argo tier: a session-wide control plane (kine, kube-apiserver, Argo's
workflow-controller, built from source by scripts/argo-control-plane/build.sh) and a fake
kubelet; each test gets a fresh namespace whose volume claim is one directory of the test."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import conveyor
from support import TASKS, need_service
from support.argo_real import Cluster, Namespace
from support.argo_server import ArgoServerProcess
from support.control_plane import BUILD_SCRIPT, ControlPlane, bin_dir, missing_binaries, pinned_versions
from support.kubelet import FakeKubelet


def pytest_report_header(config: pytest.Config) -> str:
    versions = " ".join(f"{k}={v}" for k, v in pinned_versions().items())
    return f"real Argo tier: {versions} (binaries in {bin_dir()}); {argo_server_version()}"


def argo_server_version() -> str:
    """What the built ``argo`` binary says it is (the Argo Server the client tests meet)."""
    binary = bin_dir() / "argo"
    if not binary.is_file():
        return "argo (the Argo Server): not built"
    out = subprocess.run([str(binary), "version", "--short"], capture_output=True, text=True, timeout=30)
    return f"argo server: {out.stdout.strip() or out.stderr.strip()[:200]}"


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    missing = missing_binaries()
    if missing:
        need_service(
            "argoreal", f"control-plane binaries missing in {bin_dir()}: {missing}; run {BUILD_SCRIPT}"
        )
    if shutil.which("bwrap") is None:
        need_service("argoreal", "bubblewrap (bwrap) is not installed; the fake kubelet runs pods under it")
    plane = ControlPlane()
    try:
        kube = plane.start()
    except Exception as exc:
        plane.stop()
        need_service("argoreal", f"the control plane could not start: {exc}")
    src = str(Path(conveyor.__file__).resolve().parents[1])
    env = {"PYTHONPATH": os.pathsep.join([src, str(TASKS)])}  # the "image's" own
    kubelet = FakeKubelet(kube, env=env, workers=2)
    kubelet.start()
    yield Cluster(plane, kubelet)
    kubelet.stop()
    plane.stop()


@pytest.fixture
def namespace(cluster: Cluster) -> Namespace:
    name = "t-" + uuid.uuid4().hex[:10]
    cluster.plane.ensure_namespace(name)
    return Namespace(cluster, name)


@pytest.fixture(scope="session")
def argo_server(cluster: Cluster) -> Iterator[ArgoServerProcess]:
    """``argo server`` on the session's control plane (torn down before it)."""
    built, pinned = argo_server_version(), pinned_versions()["ARGO_VERSION"]
    if built != f"argo server: argo: {pinned}+unknown":  # built from the module: no git commit
        need_service("argoreal", f"{built}, pinned {pinned} in {bin_dir()}; run {BUILD_SCRIPT} --only argo")
    server = ArgoServerProcess(cluster.plane)
    try:
        server.start()
    except Exception as exc:
        server.stop()
        need_service("argoreal", f"argo server could not start: {exc}")
    yield server
    server.stop()
