"""A real Kubernetes + Argo Workflows control plane on loopback, started by the tests.

kine (etcd's API over SQLite), ``kube-apiserver`` and Argo's ``workflow-controller``, all built
from source by ``scripts/argo-control-plane/build.sh`` (versions pinned in ``versions.env``
beside it). There is no scheduler, no kube-controller-manager and no container runtime: the
ServiceAccount admission plugin is off (nothing would mint tokens), each test gets a fresh
namespace with a ``default`` service account, and ``support.kubelet`` plays the node.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import IO

import httpx
import yaml

from support import ROOT
from support.kube import Kube, KubeError
from support.services import free_port

BUILD_SCRIPT = ROOT / "scripts" / "argo-control-plane" / "build.sh"
VERSIONS_FILE = ROOT / "scripts" / "argo-control-plane" / "versions.env"
BINARIES = ("kine", "kube-apiserver", "workflow-controller")
CONTROLLER_NAMESPACE = "argo"


def bin_dir() -> Path:
    """Where build.sh puts the binaries (the same default as the script)."""
    default = Path.home() / ".cache" / "conveyor" / "argo-control-plane" / "bin"
    return Path(os.environ.get("CONVEYOR_ARGO_BIN", default))


def pinned_versions() -> dict[str, str]:
    """The versions written in versions.env, the one place they are pinned."""
    pairs = (line.split("=", 1) for line in VERSIONS_FILE.read_text().splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs if not k.lstrip().startswith("#")}


def missing_binaries() -> list[str]:
    """Binaries absent from bin_dir(), or built for other versions than versions.env pins."""
    where = bin_dir()
    missing = [name for name in BINARIES if not (where / name).is_file()]
    built = where / "VERSIONS"
    if not missing and built.is_file():
        have = dict(line.split("=", 1) for line in built.read_text().splitlines() if "=" in line)
        stale = [k for k, v in pinned_versions().items() if have.get(k) != v]
        missing += [f"{k} (built {have.get(k)}, pinned {pinned_versions()[k]})" for k in stale]
    return missing


class ControlPlane:
    """Starts kine, the API server and the workflow controller; stops them in reverse."""

    def __init__(self) -> None:
        self.bin = bin_dir()
        self.base = Path(tempfile.mkdtemp(prefix="conveyor-argo-", dir="/tmp"))
        self.token = uuid.uuid4().hex
        self.kine_port = free_port()
        self.api_port = free_port()
        self.server = f"https://127.0.0.1:{self.api_port}"
        self.procs: list[tuple[str, subprocess.Popen[bytes], IO[bytes]]] = []
        self.kube: Kube | None = None

    # --- processes ---------------------------------------------------------------------------

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        log = (self.base / f"{name}.log").open("wb")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.base)
        self.procs.append((name, proc, log))

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.base / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def _certs(self) -> None:
        b = self.base
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-keyout",
                str(b / "tls.key"),
                "-out",
                str(b / "tls.crt"),
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1,DNS:localhost",
            ],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            ["openssl", "genrsa", "-out", str(b / "sa.key"), "2048"], check=True, capture_output=True
        )
        subprocess.run(
            ["openssl", "rsa", "-in", str(b / "sa.key"), "-pubout", "-out", str(b / "sa.pub")],
            check=True,
            capture_output=True,
        )
        (b / "tokens.csv").write_text(f'{self.token},admin,admin-uid,"system:masters"\n')
        kubeconfig = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "local",
                    "cluster": {"server": self.server, "certificate-authority": str(b / "tls.crt")},
                }
            ],
            "users": [{"name": "admin", "user": {"token": self.token}}],
            "contexts": [
                {
                    "name": "local",
                    "context": {"cluster": "local", "user": "admin", "namespace": CONTROLLER_NAMESPACE},
                }
            ],
            "current-context": "local",
        }
        (b / "kubeconfig").write_text(yaml.safe_dump(kubeconfig))

    def start(self, timeout: float = 180) -> Kube:
        """Everything up and the CRDs served; the client is returned (and kept as .kube)."""
        self._certs()
        b = self.base
        self._spawn(
            "kine",
            [
                str(self.bin / "kine"),
                "--listen-address",
                f"127.0.0.1:{self.kine_port}",
                "--endpoint",
                f"sqlite://{b}/state.db?_journal=WAL&cache=shared&_busy_timeout=30000",
                # kine's metrics listen on :8080 (every interface) by default: off, so that
                # traffic stays on loopback and two control planes do not collide
                "--metrics-bind-address",
                "0",
            ],
        )
        self._spawn(
            "kube-apiserver",
            [
                str(self.bin / "kube-apiserver"),
                f"--etcd-servers=http://127.0.0.1:{self.kine_port}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.api_port}",
                f"--cert-dir={b / 'certs'}",
                f"--tls-cert-file={b / 'tls.crt'}",
                f"--tls-private-key-file={b / 'tls.key'}",
                f"--token-auth-file={b / 'tokens.csv'}",
                "--authorization-mode=RBAC",
                "--service-account-issuer=https://kubernetes.default.svc",
                f"--service-account-key-file={b / 'sa.pub'}",
                f"--service-account-signing-key-file={b / 'sa.key'}",
                "--service-cluster-ip-range=10.96.0.0/24",
                "--disable-admission-plugins=ServiceAccount",
                "--enable-priority-and-fairness=false",
                "--endpoint-reconciler-type=none",
            ],
        )
        self.kube = Kube(self.server, self.token, b / "tls.crt")
        self._wait_ready(timeout)
        self._apply_crds()
        self.ensure_namespace(CONTROLLER_NAMESPACE)
        self.kube.create(
            "v1",
            "configmaps",
            {
                "metadata": {"name": "workflow-controller-configmap"},
                "data": {"metricsConfig": "enabled: false\n", "telemetryConfig": "enabled: false\n"},
            },
            namespace=CONTROLLER_NAMESPACE,
        )
        env = dict(os.environ, LEADER_ELECTION_DISABLE="true", KUBECONFIG=str(b / "kubeconfig"))
        self._spawn(
            "workflow-controller",
            [
                str(self.bin / "workflow-controller"),
                "--kubeconfig",
                str(b / "kubeconfig"),
                "--namespace",
                CONTROLLER_NAMESPACE,
                "--loglevel",
                "info",
                "--qps",
                "200",
                "--burst",
                "400",
            ],
            env=env,
        )
        return self.kube

    def _wait_ready(self, timeout: float) -> None:
        assert self.kube is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc, _ in self.procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.log_tail(name)}")
            try:
                if self.kube.client.get("/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"kube-apiserver not ready after {timeout}s:\n{self.log_tail('kube-apiserver')}")

    def _apply_crds(self) -> None:
        assert self.kube is not None
        names = []
        for path in sorted((self.bin / "crds").glob("*.yaml")):
            doc = yaml.safe_load(path.read_text())
            if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
                continue
            self.kube.create("apiextensions.k8s.io/v1", "customresourcedefinitions", doc)
            names.append(doc["metadata"]["name"])
        if "workflows.argoproj.io" not in names:
            raise RuntimeError(f"no Argo CRDs in {self.bin / 'crds'} (run {BUILD_SCRIPT})")
        deadline = time.monotonic() + 60
        for name in names:
            while True:
                crd = self.kube.get("apiextensions.k8s.io/v1", "customresourcedefinitions", name)
                conditions = {
                    c["type"]: c["status"] for c in (crd.get("status") or {}).get("conditions") or []
                }
                if conditions.get("Established") == "True":
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"CRD {name} not established: {conditions}")
                time.sleep(0.2)

    def ensure_namespace(self, name: str) -> None:
        """A namespace and its ``default`` service account (no controller-manager makes it)."""
        assert self.kube is not None
        for api, plural, body, ns in (
            ("v1", "namespaces", {"metadata": {"name": name}}, None),
            ("v1", "serviceaccounts", {"metadata": {"name": "default"}}, name),
        ):
            try:
                self.kube.create(api, plural, body, namespace=ns)
            except KubeError as exc:
                if exc.status != 409:
                    raise

    def controller_alive(self) -> None:
        for name, proc, _ in self.procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.log_tail(name)}")

    def stop(self) -> None:
        if self.kube is not None:
            self.kube.close()
        for _name, proc, log in reversed(self.procs):
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()
        if not os.environ.get("CONVEYOR_ARGO_KEEP"):
            shutil.rmtree(self.base, ignore_errors=True)
