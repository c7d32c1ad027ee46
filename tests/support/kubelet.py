"""A fake kubelet: runs the pods Argo's real workflow controller creates, without a container
runtime, and reports them as a kubelet and Argo's executor would.

It watches the pods of workflows, binds each to its Node, runs the main container's command
(what follows ``argoexec emissary --``; ``conveyor`` becomes the "image's" Python with
``-m conveyor.cli``) under bubblewrap, the pod's file system built as a container's would be:
the host's system directories, the interpreter and the import path read-only (the image),
each persistent volume claim bound from one directory of the test at its ``mountPath`` (the
first also the working directory, as the image's workdir would be), emptyDirs and ``/tmp``
fresh per-pod directories; nothing else of the host is visible and the rest of the root is
read-only. The process sees the pod's environment and only what the interpreter needs
(``PATH``, ``PYTHONPATH``, ``HOME``, ``LANG``, ``HOSTNAME``), has its own user, PID, IPC,
UTS and network namespaces (loopback only: pods talk to no server; the kubelet reports for
them) and dies with the kubelet. When the command ends it writes the step's output
parameters as the ``WorkflowTaskResult`` named after the pod's node id (labelled
``report-outputs-completed: "true"``), as Argo's wait container does, then the container
statuses with exit codes and the pod phase.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from support.kube import Kube, KubeError, Obj

WORKFLOW_LABEL = "workflows.argoproj.io/workflow"
NODE_ID_ANNOTATION = "workflows.argoproj.io/node-id"
# The "image": host system directories every pod sees read-only (merged-/usr symlinks kept).
SYSTEM = ("/usr", "/etc", "/bin", "/lib", "/lib64", "/sbin")
IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class PodRun:
    """What the kubelet did with one pod: for the tests' assertions."""

    namespace: str
    name: str
    argv: list[str]
    exit_code: int
    outputs: dict[str, str]
    stderr: str


@dataclass
class FakeKubelet:
    """Runs pods of workflows in the namespaces registered with ``serve`` (claim -> directory).

    ``env`` is the image's environment (``PYTHONPATH`` where conveyor and the tests' task
    modules are): those directories are bound read-only into every pod; nothing else of the
    host's environment reaches a pod."""

    kube: Kube
    env: dict[str, str]
    node: str = "conveyor-fake-node"
    workers: int = 2
    claims: dict[tuple[str, str], Path] = field(default_factory=dict)
    runs: list[PodRun] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._seen: set[str] = set()
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="kubelet")
        self._thread = threading.Thread(target=self._watch_loop, name="kubelet-watch", daemon=True)

    def serve(self, namespace: str, claims: dict[str, Path]) -> None:
        """Map the namespace's persistent volume claims onto directories."""
        for claim, where in claims.items():
            self.claims[(namespace, claim)] = where

    def start(self) -> None:
        node = {
            "metadata": {"name": self.node, "labels": {"kubernetes.io/hostname": self.node}},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]},
        }
        try:
            self.kube.create("v1", "nodes", node)
        except KubeError as exc:
            if exc.status != 409:
                raise
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._pool.shutdown(wait=True, cancel_futures=True)

    # --- watching ------------------------------------------------------------------------------

    def _watch_loop(self) -> None:
        selector = {"labelSelector": WORKFLOW_LABEL}
        while not self._stop.is_set():
            try:
                listing = self.kube.list("v1", "pods", **selector)
                for pod in listing["items"]:
                    self._offer(pod)
                version = listing["metadata"]["resourceVersion"]
                for event in self.kube.watch("v1", "pods", version, timeoutSeconds="30", **selector):
                    if self._stop.is_set():
                        return
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self._offer(event["object"])
            except (httpx.HTTPError, KubeError) as exc:
                if not self._stop.is_set():
                    self.errors.append(f"watch: {exc}")
                    time.sleep(0.5)

    def _offer(self, pod: Obj) -> None:
        meta = pod["metadata"]
        uid = meta["uid"]
        if uid in self._seen or pod.get("status", {}).get("phase", "Pending") != "Pending":
            return
        if meta.get("deletionTimestamp"):
            return
        if not any(ns == meta["namespace"] for ns, _ in self.claims):
            return
        self._seen.add(uid)
        self._pool.submit(self._guarded, pod)

    def _guarded(self, pod: Obj) -> None:
        try:
            self._run_pod(pod)
        except Exception as exc:  # a kubelet bug must show in the test, not vanish in a thread
            meta = pod["metadata"]
            self.errors.append(f"pod {meta['namespace']}/{meta['name']}: {type(exc).__name__}: {exc}")
            try:  # and the pod must not hang Pending: the workflow then fails with the reason
                self._set_status(
                    meta["namespace"], meta["name"], "Failed", self._statuses(pod["spec"], now(), 1)
                )
            except Exception as again:
                self.errors.append(f"pod {meta['namespace']}/{meta['name']}: status not reported: {again}")

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
        main = next(c for c in spec["containers"] if c["name"] == "main")
        started = now()
        self._set_status(ns, name, "Running", self._statuses(spec, started, None))
        with tempfile.TemporaryDirectory(prefix="pod-") as pod_dir:
            mounts, cwd = self._mounts(ns, spec, main, Path(pod_dir))
            argv = self._command(main)
            env = self._env(main, pod)
            deadline = spec.get("activeDeadlineSeconds")
            try:
                done = subprocess.run(
                    self._sandbox(argv, mounts, cwd, name),
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=deadline,
                )
                code, stderr = done.returncode, done.stderr
            except subprocess.TimeoutExpired as exc:
                code, stderr = 137, str(exc.stderr or "")
            argo = self._argo_env(spec)
            template = json.loads(argo.get("ARGO_TEMPLATE", "{}"))
            outputs, missing = self._outputs(template, mounts) if code == 0 else ({}, None)
        if missing:
            code, stderr = 1, stderr + f"\noutput parameter file missing: {missing}"
        self._report_outputs(pod, argo, outputs, code)
        self.runs.append(PodRun(ns, name, argv, code, outputs, stderr[-4000:]))
        phase = "Succeeded" if code == 0 else "Failed"
        self._set_status(ns, name, phase, self._statuses(spec, started, code))

    def _mounts(self, ns: str, spec: Obj, main: Obj, pod_dir: Path) -> tuple[dict[str, Path], str]:
        """Container paths -> host directories, and the working directory in the pod: the
        container's ``workingDir``, else the first claim mounted (where the project's files
        are, as the image's workdir would be)."""
        volumes = self._volume_dirs(ns, spec, pod_dir)
        claimed = {v["name"] for v in spec.get("volumes", []) if "persistentVolumeClaim" in v}
        (pod_dir / "tmp").mkdir()
        mounts: dict[str, Path] = {"/tmp": pod_dir / "tmp"}
        cwd = main.get("workingDir", "")
        for mount in main.get("volumeMounts", []):
            target = volumes[mount["name"]] / mount.get("subPath", "")
            target.mkdir(parents=True, exist_ok=True)
            mounts[mount["mountPath"]] = target
            if mount["name"] in claimed and not cwd:
                cwd = mount["mountPath"]
        return mounts, cwd or "/"

    def image_dirs(self) -> list[str]:
        """Host directories the image provides, read-only: the interpreter (its virtual
        environment and base installation) and the import path the image sets."""
        wanted = [sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(sys.executable)]
        wanted += [p for p in self.env.get("PYTHONPATH", "").split(os.pathsep) if p]
        places: list[str] = []
        for place in sorted({os.path.realpath(p) for p in wanted}, key=len):
            inside = any(place == o or place.startswith(o.rstrip("/") + "/") for o in (*SYSTEM, *places))
            if os.path.isdir(place) and not inside:
                places.append(place)
        return places

    def _sandbox(self, argv: list[str], mounts: dict[str, Path], cwd: str, pod: str) -> list[str]:
        """``argv`` under bubblewrap, in the pod's file system (see the module's docstring)."""
        bwrap = shutil.which("bwrap")
        if bwrap is None:
            raise RuntimeError("bubblewrap (bwrap) is not installed; the fake kubelet runs pods under it")
        args = [bwrap]
        for place in SYSTEM:
            if os.path.islink(place):
                args += ["--symlink", os.readlink(place), place]
            elif os.path.isdir(place):
                args += ["--ro-bind", place, place]
        binds = [(place, place, "--ro-bind") for place in self.image_dirs()]
        binds += [(str(host), where, "--bind") for where, host in mounts.items()]
        # Parents first: a checkout under /tmp is bound inside the pod's own /tmp.
        for source, target, how in sorted(binds, key=lambda b: b[1].rstrip("/").count("/")):
            args += [how, source, target]
        args += ["--dev", "/dev", "--proc", "/proc", "--remount-ro", "/"]
        # --cap-drop ALL: bubblewrap started by root would otherwise keep root's capabilities.
        args += ["--unshare-all", "--cap-drop", "ALL", "--die-with-parent", "--new-session"]
        args += ["--hostname", pod[:63], "--chdir", cwd]
        return [*args, "--", *argv]

    def _volume_dirs(self, ns: str, spec: Obj, pod_dir: Path) -> dict[str, Path]:
        dirs: dict[str, Path] = {}
        for volume in spec.get("volumes", []):
            claim = volume.get("persistentVolumeClaim", {}).get("claimName")
            if claim is not None:
                if (ns, claim) not in self.claims:
                    raise RuntimeError(f"no directory for claim {claim} in {ns}")
                dirs[volume["name"]] = self.claims[(ns, claim)]
            else:
                dirs[volume["name"]] = pod_dir / "volumes" / volume["name"]
                dirs[volume["name"]].mkdir(parents=True, exist_ok=True)
        return dirs

    @staticmethod
    def _apply(text: str, mounts: dict[str, Path]) -> str:
        for path in sorted(mounts, key=len, reverse=True):
            if text == path or text.startswith(path.rstrip("/") + "/"):
                return str(mounts[path]) + text[len(path.rstrip("/")) :]
        return text

    @staticmethod
    def _command(main: Obj) -> list[str]:
        full = list(main.get("command", [])) + list(main.get("args", []))
        if "emissary" in full and "--" in full:
            full = full[full.index("--") + 1 :]
        if full and full[0] == "conveyor":
            return [sys.executable, "-m", "conveyor.cli", *full[1:]]
        return full

    def _env(self, main: Obj, pod: Obj) -> dict[str, str]:
        """The pod's environment: what the image sets, then the container's own variables."""
        name = pod["metadata"]["name"]
        env = {"PATH": os.path.dirname(sys.executable) + os.pathsep + IMAGE_PATH}
        env |= {"HOME": "/tmp", "LANG": "C.UTF-8", "HOSTNAME": name[:63]}
        env |= {k: v for k, v in self.env.items() if k == "PYTHONPATH"}
        fields = {
            "metadata.name": name,
            "metadata.namespace": pod["metadata"]["namespace"],
            "metadata.uid": pod["metadata"]["uid"],
            "spec.nodeName": self.node,
        }
        for item in main.get("env", []):
            if "value" in item:
                env[item["name"]] = item["value"]
            elif "fieldRef" in item.get("valueFrom", {}):
                env[item["name"]] = fields.get(item["valueFrom"]["fieldRef"]["fieldPath"], "")
        return env

    @staticmethod
    def _argo_env(spec: Obj) -> dict[str, str]:
        """What Argo tells its own executor: the template (on the init container), the node
        id, the workflow's name and uid (on the wait container)."""
        values: dict[str, str] = {}
        for container in spec.get("initContainers", []) + spec["containers"]:
            for item in container.get("env", []):
                if item["name"].startswith("ARGO_") and "value" in item:
                    values.setdefault(item["name"], item["value"])
        if values.get("ARGO_TEMPLATE") == "offloaded":
            raise RuntimeError("the template was offloaded to a ConfigMap, which this kubelet does not read")
        return values

    def _outputs(
        self, template: dict[str, Any], mounts: dict[str, Path]
    ) -> tuple[dict[str, str], str | None]:
        """Output parameters read from their files, as Argo's executor does (one trailing
        newline trimmed; ``default`` when the file is absent)."""
        values: dict[str, str] = {}
        for param in template.get("outputs", {}).get("parameters", []):
            source = param.get("valueFrom", {})
            if "path" not in source:
                continue
            path = Path(self._apply(source["path"], mounts))
            if path.is_file():
                text = path.read_text()
                values[param["name"]] = text[:-1] if text.endswith("\n") else text
            elif "default" in source:
                values[param["name"]] = str(source["default"])
            else:
                return values, source["path"]
        return values, None

    def _report_outputs(self, pod: Obj, env: dict[str, str], outputs: dict[str, str], code: int) -> None:
        node_id = env.get("ARGO_NODE_ID") or pod["metadata"]["annotations"][NODE_ID_ANNOTATION]
        workflow = env.get("ARGO_WORKFLOW_NAME") or pod["metadata"]["labels"][WORKFLOW_LABEL]
        result: Obj = {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "WorkflowTaskResult",
            "metadata": {
                "name": node_id,
                "labels": {
                    WORKFLOW_LABEL: workflow,
                    "workflows.argoproj.io/report-outputs-completed": "true",
                },
            },
            "outputs": {"exitCode": str(code)},
        }
        if outputs:
            result["outputs"]["parameters"] = [{"name": k, "value": v} for k, v in outputs.items()]
        if env.get("ARGO_WORKFLOW_UID"):
            result["metadata"]["ownerReferences"] = [
                {
                    "apiVersion": "argoproj.io/v1alpha1",
                    "kind": "Workflow",
                    "name": workflow,
                    "uid": env["ARGO_WORKFLOW_UID"],
                }
            ]
        self.kube.create(
            "argoproj.io/v1alpha1", "workflowtaskresults", result, namespace=pod["metadata"]["namespace"]
        )

    @staticmethod
    def _statuses(spec: Obj, started: str, code: int | None) -> dict[str, Any]:
        def state(exit_code: int | None) -> Obj:
            if exit_code is None:
                return {"running": {"startedAt": started}}
            reason = "Completed" if exit_code == 0 else "Error"
            return {
                "terminated": {
                    "exitCode": exit_code,
                    "reason": reason,
                    "startedAt": started,
                    "finishedAt": now(),
                }
            }

        def status(container: Obj, exit_code: int | None) -> Obj:
            return {
                "name": container["name"],
                "image": container.get("image", ""),
                "imageID": "",
                "ready": exit_code is None,
                "restartCount": 0,
                "started": exit_code is None,
                "state": state(exit_code),
            }

        main_code = code
        return {
            "initContainerStatuses": [status(c, 0) for c in spec.get("initContainers", [])],
            "containerStatuses": [
                status(c, main_code if c["name"] == "main" else (None if code is None else 0))
                for c in spec["containers"]
            ],
        }

    def _set_status(self, ns: str, name: str, phase: str, statuses: dict[str, Any]) -> None:
        for _ in range(20):
            pod = self.kube.get("v1", "pods", name, ns)
            status = pod.setdefault("status", {})
            status.update(statuses)
            status["phase"] = phase
            status.setdefault("startTime", now())
            status["hostIP"] = status["podIP"] = "127.0.0.1"
            status["hostIPs"] = status["podIPs"] = [{"ip": "127.0.0.1"}]
            ready = "True" if phase == "Running" else "False"
            status["conditions"] = [
                {"type": t, "status": ready if t in ("Ready", "ContainersReady") else "True"}
                for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
            ]
            try:
                self.kube.replace_status("v1", "pods", pod)
                return
            except KubeError as exc:
                if exc.status == 404:
                    return
                if exc.status != 409:
                    raise
        raise RuntimeError(f"pod {ns}/{name}: status update kept conflicting")
