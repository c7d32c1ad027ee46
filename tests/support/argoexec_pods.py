"""Pods through Argo's real executor: the second, slower tier of the fake kubelet.

``FakeKubelet`` runs only the main container's command and writes the step's
``WorkflowTaskResult`` itself. ``ArgoexecKubelet`` runs every container of the pod the real
controller created, as a kubelet would: the ``init`` container (``argoexec init``, which
copies argoexec into ``/var/run/argo`` and writes the template there), then the ``main``
container as the controller rewrote it (``/var/run/argo/argoexec emissary -- conveyor ...``)
beside the ``wait`` container (``argoexec wait``), which reads the outputs emissary saved and
writes the task result through the API server. So the outputs the controller reads are
written by Argo's own executor, not by this code.

Each container runs under bubblewrap like the fast tier's pods, with its own volume mounts
(the pod's emptyDirs, ``/var/run/argo`` among them, shared between its containers), the
environment the controller put on it, and what a kubelet adds to every container: the
service-account files at ``/var/run/secrets/kubernetes.io/serviceaccount`` (the test API
server's token and CA) and ``KUBERNETES_SERVICE_HOST``/``PORT``. argoexec's "image" is a
folder holding the built binary, bound read-only and first on ``PATH``. The init and wait
containers share the host's network (they talk to the API server on loopback); the main
container keeps its own, empty one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support.control_plane import ControlPlane
from support.kube import KubeError, Obj
from support.kubelet import NODE_ID_ANNOTATION, FakeKubelet, PodRun, now

SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
TASK_RESULTS = ("argoproj.io/v1alpha1", "workflowtaskresults")


@dataclass
class ContainerRun:
    """One container's process: its command and how it ended (for the tests' assertions)."""

    name: str
    argv: list[str]
    exit_code: int
    log: str


@dataclass
class ArgoexecKubelet(FakeKubelet):
    """A fake kubelet that runs a pod's init, main and wait containers with the real argoexec.

    ``argoexec`` is the built binary; ``plane`` gives the API server's address, token and CA
    that the pod's service-account files carry."""

    argoexec: Path = Path("argoexec")
    plane: ControlPlane | None = None
    node: str = "conveyor-argoexec-node"
    containers: dict[str, list[ContainerRun]] = field(default_factory=dict)
    #: The task result argoexec wrote for each pod, read before the pod's phase is reported
    #: (the controller deletes task results once the workflow is done).
    task_results: dict[str, Obj] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        self._image = Path(tempfile.mkdtemp(prefix="argoexec-image-"))
        try:
            os.link(self.argoexec, self._image / "argoexec")
        except OSError:
            shutil.copy2(self.argoexec, self._image / "argoexec")

    def stop(self) -> None:
        super().stop()
        shutil.rmtree(self._image, ignore_errors=True)

    def image_dirs(self) -> list[str]:
        """The fast tier's image (interpreter, import path) plus argoexec's folder."""
        return [*super().image_dirs(), str(self._image)]

    # --- one pod -------------------------------------------------------------------------------

    def _run_pod(self, pod: Obj) -> None:
        meta, spec = pod["metadata"], pod["spec"]
        ns, name = meta["namespace"], meta["name"]
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name},
            "target": {"apiVersion": "v1", "kind": "Node", "name": self.node},
        }
        self.kube.subresource("v1", "pods", name, ns, "binding", binding)
        started = now()
        codes: dict[str, int | None] = {c["name"]: None for c in spec.get("initContainers", [])}
        codes |= {c["name"]: None for c in spec["containers"]}
        self._set_status(ns, name, "Pending", self._container_statuses(spec, started, codes))
        timeout = float(spec.get("activeDeadlineSeconds") or 600)
        runs: list[ContainerRun] = []
        with tempfile.TemporaryDirectory(prefix="pod-") as pod_dir:
            volumes = self._volume_dirs(ns, spec, Path(pod_dir))
            account = self._service_account(ns, Path(pod_dir))
            for init in spec.get("initContainers", []):
                procs = [self._start(pod, init, volumes, account, Path(pod_dir))]
                runs += self._finish(procs, timeout)
                codes[init["name"]] = runs[-1].exit_code
                if runs[-1].exit_code != 0:
                    break
            if all(code == 0 for code in codes.values() if code is not None):
                self._set_status(ns, name, "Running", self._container_statuses(spec, started, codes))
                procs = [self._start(pod, c, volumes, account, Path(pod_dir)) for c in spec["containers"]]
                for run in self._finish(procs, timeout):
                    runs.append(run)
                    codes[run.name] = run.exit_code
        self.containers[f"{ns}/{name}"] = runs
        main = next((r for r in runs if r.name == "main"), None)
        code = main.exit_code if main is not None else 1
        failed = [r for r in runs if r.exit_code != 0]
        self.runs.append(
            PodRun(ns, name, main.argv if main else [], code, self._task_outputs(pod), _logs(failed or runs))
        )
        phase = "Succeeded" if not failed and None not in codes.values() else "Failed"
        self._set_status(ns, name, phase, self._container_statuses(spec, started, codes))

    def _start(
        self, pod: Obj, container: Obj, volumes: dict[str, Path], account: Path, pod_dir: Path
    ) -> tuple[ContainerRun, subprocess.Popen[bytes]]:
        """Start one container's command in its own sandbox."""
        name = container["name"]
        (pod_dir / "tmp" / name).mkdir(parents=True)
        mounts: dict[str, Path] = {"/tmp": pod_dir / "tmp" / name, SERVICE_ACCOUNT: account}
        cwd = container.get("workingDir", "")
        claimed = {v["name"] for v in pod["spec"].get("volumes", []) if "persistentVolumeClaim" in v}
        for mount in container.get("volumeMounts", []):
            target = volumes[mount["name"]] / mount.get("subPath", "")
            target.mkdir(parents=True, exist_ok=True)
            mounts[mount["mountPath"]] = target
            if mount["name"] in claimed and not cwd:
                cwd = mount["mountPath"]  # the image's workdir: where the project's files are
        argv = list(container.get("command", [])) + list(container.get("args", []))
        sandbox = self._sandbox(argv, mounts, cwd or "/", pod["metadata"]["name"])
        if name != "main":  # the executor's containers reach the API server on loopback
            sandbox.insert(sandbox.index("--unshare-all") + 1, "--share-net")
        env = self._env(container, pod)
        env["PATH"] = f"{self._image}{os.pathsep}{env['PATH']}"
        assert self.plane is not None
        env |= {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(self.plane.api_port)}
        # A file, not a pipe: a container whose pipe filled would block while its sibling waits.
        log = pod_dir / f"{name}.log"
        with log.open("w") as out:
            proc = subprocess.Popen(sandbox, env=env, stdout=out, stderr=subprocess.STDOUT)
        return ContainerRun(name, argv, -1, str(log)), proc

    @staticmethod
    def _finish(
        procs: list[tuple[ContainerRun, subprocess.Popen[bytes]]], timeout: float
    ) -> list[ContainerRun]:
        """Wait for the containers; one past the pod's deadline is killed (exit code 137).
        Each run's ``log`` names its log file until then, and holds the log's tail after."""
        for run, proc in procs:
            try:
                run.exit_code = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                run.exit_code = 137
            run.log = Path(run.log).read_text(errors="replace")[-6000:]
        return [run for run, _ in procs]

    def _service_account(self, ns: str, pod_dir: Path) -> Path:
        """What a kubelet mounts for the pod's service account: token, CA and namespace."""
        assert self.plane is not None
        account = pod_dir / "serviceaccount"
        account.mkdir()
        (account / "token").write_text(self.plane.token)
        shutil.copy(self.plane.base / "tls.crt", account / "ca.crt")
        (account / "namespace").write_text(ns)
        return account

    def _task_outputs(self, pod: Obj) -> dict[str, str]:
        """The output parameters in the task result argoexec wrote (empty when there is none)."""
        meta = pod["metadata"]
        try:
            result = self.kube.get(*TASK_RESULTS, meta["annotations"][NODE_ID_ANNOTATION], meta["namespace"])
        except KubeError:
            return {}
        self.task_results[f"{meta['namespace']}/{meta['name']}"] = result
        params = result.get("outputs", {}).get("parameters", [])
        return {p["name"]: p.get("value", "") for p in params}

    @staticmethod
    def _container_statuses(spec: Obj, started: str, codes: dict[str, int | None]) -> dict[str, Any]:
        """Container statuses as a kubelet reports them: waiting before a container starts,
        running, then terminated with its own exit code."""

        def status(container: Obj, ran: bool) -> Obj:
            code = codes.get(container["name"])
            state: Obj
            if code is not None:
                reason = "Completed" if code == 0 else "Error"
                state = {
                    "terminated": {
                        "exitCode": code,
                        "reason": reason,
                        "startedAt": started,
                        "finishedAt": now(),
                    }
                }
            elif ran:
                state = {"running": {"startedAt": started}}
            else:
                state = {"waiting": {"reason": "PodInitializing"}}
            return {
                "name": container["name"],
                "image": container.get("image", ""),
                "imageID": "",
                "ready": code is None and ran,
                "restartCount": 0,
                "started": code is None and ran,
                "state": state,
            }

        inits = spec.get("initContainers", [])
        initialised = all(codes.get(c["name"]) == 0 for c in inits)
        first = next((c["name"] for c in inits if codes.get(c["name"]) is None), None)
        return {
            "initContainerStatuses": [status(c, c["name"] == first) for c in inits],
            "containerStatuses": [status(c, initialised) for c in spec["containers"]],
        }


def _logs(runs: list[ContainerRun]) -> str:
    return "\n".join(f"--- {r.name} (exit {r.exit_code})\n{r.log}" for r in runs)[-8000:]
