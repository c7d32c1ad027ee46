"""The fake kubelet's pods are confined as containers would be (bubblewrap): a pod sees the
pod's environment and its volume mounts, writes only to them, and reaches no server; a
probe pod, created by the real controller from a hand-written Workflow, reports what it saw
into the shared volume."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from support.argo_real import Namespace

pytestmark = pytest.mark.argoreal

PROBE = """
import json, os, socket, sys
seen = {"env": dict(os.environ), "cwd": os.getcwd(), "writes": {}, "visible": {}}
for path in sys.argv[1:-1]:
    try:
        with open(path, "w") as f:
            f.write("x")
        seen["writes"][path] = "written"
    except OSError as exc:
        seen["writes"][path] = type(exc).__name__
for path in [sys.argv[1].rsplit("/", 1)[0], "/work", os.path.expanduser("~root")]:
    seen["visible"][path] = sorted(os.listdir(path)) if os.path.isdir(path) else None
server = sys.argv[-1].rsplit(":", 1)
try:
    socket.create_connection((server[0], int(server[1])), timeout=2).close()
    seen["server"] = "reached"
except OSError as exc:
    seen["server"] = type(exc).__name__
with open("/data/probe.json", "w") as f:
    json.dump(seen, f)
"""


def probe_workflow(outside: Path, api: str) -> dict[str, object]:
    writes = [str(outside / "escaped.txt"), "/etc/escaped.txt", "/data/inside.txt", "/scratch/s.txt"]
    writes += ["/tmp/t.txt", "/escaped.txt"]
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": "probe-"},
        "spec": {
            "entrypoint": "probe",
            "volumes": [
                {"name": "data", "persistentVolumeClaim": {"claimName": "conveyor-data"}},
                {"name": "scratch", "emptyDir": {}},
            ],
            "templates": [
                {
                    "name": "probe",
                    "container": {
                        "image": "python:3",
                        "command": ["python3", "-c", PROBE, *writes, api],
                        "env": [{"name": "PROBE_VALUE", "value": "from-the-pod"}],
                        "volumeMounts": [
                            {"name": "data", "mountPath": "/data"},
                            {"name": "scratch", "mountPath": "/scratch"},
                        ],
                    },
                }
            ],
        },
    }


def test_a_pod_sees_its_env_and_mounts_only(namespace: Namespace, tmp_path: Path) -> None:
    claim, outside = tmp_path / "claim", tmp_path / "outside"
    claim.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text("host only")
    api = namespace.cluster.plane.server.removeprefix("https://")
    done = namespace.submit(probe_workflow(outside, api), {"conveyor-data": claim})
    assert done.phase == "Succeeded", [(p.exit_code, p.stderr[-800:]) for p in done.pods]
    seen = json.loads((claim / "probe.json").read_text())
    # Its mounts are writable (the claim is the test's directory), nothing else is.
    assert (claim / "inside.txt").read_text() == "x"
    assert seen["writes"] == {
        str(outside / "escaped.txt"): "FileNotFoundError",
        "/etc/escaped.txt": "OSError",
        "/data/inside.txt": "written",
        "/scratch/s.txt": "written",
        "/tmp/t.txt": "written",
        "/escaped.txt": "OSError",
    }
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    assert not Path("/escaped.txt").exists() and not Path("/etc/escaped.txt").exists()
    # The host's directories are not there: the test's, /work (the checkouts), root's home
    # (only the interpreter's installation is bound, if it lives there).
    assert seen["visible"][str(outside)] is None
    image = namespace.cluster.kubelet.image_dirs()
    for place in ("/work", os.path.expanduser("~root")):
        leads = {p[len(place) + 1 :].split("/")[0] for p in image if p.startswith(place + "/")}
        assert set(seen["visible"][place] or []) == leads, (place, seen["visible"][place])
    # The pod's environment, the controller's ARGO_ variables and the image's own; none of
    # the host's (this test process's) variables.
    env = seen["env"]
    assert env["PROBE_VALUE"] == "from-the-pod"
    own = {"PATH", "PYTHONPATH", "HOME", "LANG", "HOSTNAME", "PWD"}  # PWD: bubblewrap's --chdir
    assert {k for k in env if not k.startswith("ARGO_")} - {"PROBE_VALUE"} == own, sorted(env)
    assert "PYTEST_CURRENT_TEST" in os.environ and "PYTEST_CURRENT_TEST" not in env
    assert env["HOSTNAME"] == done.pods[0].name[:63]
    assert seen["cwd"] == env["PWD"] == "/data"
    # No network: the API server on the host's loopback is out of reach.
    assert seen["server"] in ("ConnectionRefusedError", "OSError"), seen["server"]
