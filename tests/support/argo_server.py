"""The real Argo Server (``argo server``, built from source by build.sh) beside the test
control plane, for conveyor's Argo client and CLI.

It runs with ``--auth-mode=client``: each request's bearer token is the Kubernetes token the
server acts with, so the client's Authorization header is exercised, and without a token
the server refuses. Plain HTTP (``--secure=false``, what ``ARGO_SECURE=false`` talks to).
Argo v4.0.5's server has no bind-address flag and listens on every interface; the port is a
free one, and a request without the control plane's token is refused.
"""

from __future__ import annotations

import os
import subprocess
import time
from typing import IO

import httpx

from support.control_plane import ControlPlane, bin_dir
from support.services import free_port


class ArgoServerProcess:
    """``argo server`` against ``plane``'s API server; ``url`` once :meth:`start` returned."""

    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane
        self.binary = bin_dir() / "argo"
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.address}"
        self.token = plane.token
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def log_tail(self, lines: int = 30) -> str:
        return self.plane.log_tail("argo-server", lines)

    def start(self, timeout: float = 90) -> None:
        """Start it and wait until it answers its version with the token."""
        # The argo binary reads every ARGO_* variable as a flag (viper): none may leak in.
        env = {k: v for k, v in os.environ.items() if not k.startswith("ARGO_")}
        env["KUBECONFIG"] = str(self.plane.base / "kubeconfig")
        self._log = (self.plane.base / "argo-server.log").open("wb")
        self.proc = subprocess.Popen(
            [
                str(self.binary),
                "server",
                "--kubeconfig",
                env["KUBECONFIG"],
                "--port",
                str(self.port),
                "--secure=false",
                "--auth-mode=client",
                "--loglevel",
                "info",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self.plane.base,
        )
        deadline = time.monotonic() + timeout
        headers = {"Authorization": f"Bearer {self.token}"}
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"argo server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/api/v1/version", headers=headers, timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"argo server not answering after {timeout}s:\n{self.log_tail()}")

    def alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"argo server exited with {self.proc.returncode}:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log is not None:
            self._log.close()
