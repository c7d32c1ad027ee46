"""The Argo Server's REST API: submit, get, logs, stop, retry (extra ``conveyor[argo]``).

Settings follow the argo CLI's environment: ARGO_SERVER (host:port or URL), ARGO_TOKEN
(with or without "Bearer "), ARGO_NAMESPACE, ARGO_INSECURE_SKIP_VERIFY, ARGO_SECURE=false
(plain HTTP for host:port), ARGO_BASE_HREF (a path prefix).
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from conveyor.errors import ConveyorError
from conveyor.executors.argo.manifest import Manifest, WorkflowObject

if TYPE_CHECKING:
    import httpx

SUBMIT_PATHS = {
    "Workflow": ("workflows", "workflow"),
    "WorkflowTemplate": ("workflow-templates", "template"),
    "CronWorkflow": ("cron-workflows", "cronWorkflow"),
}


#: Seconds to wait before sending a request again that the server answered 503.
UNAVAILABLE_PAUSES = (1.0, 2.0, 4.0)
#: The most an answer may hold, and the longest it may take to arrive whole: a server that
#: sends without end (or drips) is an error, not a CLI that grows or waits for ever.
MAX_ANSWER = 64 << 20
_TRANSFER_HEADERS = {"content-encoding", "content-length", "transfer-encoding"}


class ArgoError(ConveyorError):
    """The Argo Server refused a request or could not be reached (the message says which)."""


def printable(text: str) -> str:
    """``text`` from the Argo Server as a terminal may show it: control characters (escape
    sequences that clear the screen or retitle the window, carriage returns) written as
    ``\\xNN``; tabs kept."""
    return "".join(
        c if c == "\t" or (c.isprintable() and c not in "\x1b\x7f") else f"\\x{ord(c):02x}" for c in text
    )


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in {"1", "true", "yes"}


class ArgoServer:
    """The Argo Server's REST API, as much of it as conveyor uses; failures are ArgoErrors."""

    def __init__(
        self,
        server: str | None = None,
        token: str | None = None,
        namespace: str | None = None,
        insecure: bool | None = None,
        ca_file: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        try:
            import httpx
        except ImportError:
            raise ArgoError(
                "talking to an Argo Server needs the argo extra: pip install 'conveyor[argo]'"
            ) from None
        server = server or os.environ.get("ARGO_SERVER")
        if not server:
            raise ArgoError("no Argo Server given: set ARGO_SERVER (host:port or URL) or pass --server")
        if "://" not in server:
            # The argo CLI's convention: host:port means TLS unless ARGO_SECURE=false.
            secure = os.environ.get("ARGO_SECURE", "true").lower() not in {"0", "false", "no"}
            server = ("https://" if secure else "http://") + server
        base = server.rstrip("/") + "/" + os.environ.get("ARGO_BASE_HREF", "").strip("/")
        self.base = base.rstrip("/")
        token = token if token is not None else os.environ.get("ARGO_TOKEN", "")
        self.namespace = namespace or os.environ.get("ARGO_NAMESPACE") or "default"
        insecure = insecure if insecure is not None else _truthy(os.environ.get("ARGO_INSECURE_SKIP_VERIFY"))
        verify: bool | str = ca_file or not insecure
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = token if token.lower().startswith("bearer ") else f"Bearer {token}"
        self._http = httpx.Client(base_url=self.base, headers=headers, verify=verify, timeout=timeout)
        self._deadline = max(timeout * 4, 60.0)
        self._httpx = httpx

    def _request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        import time

        for pause in (*UNAVAILABLE_PAUSES, None):
            try:
                response = self._bounded(method, path, **kw)
            except self._httpx.HTTPError as exc:
                raise ArgoError(f"cannot reach the Argo Server at {self.base}: {exc}") from None
            # 503: the server's HTTP gateway could not reach its own gRPC side (seen on a real
            # argo server under load); the request went no further, so it is sent again.
            if response.status_code != 503 or pause is None:
                break
            time.sleep(pause)
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = None
            message = body.get("message") if isinstance(body, dict) else None
            detail = message if isinstance(message, str) else response.text
            raise ArgoError(
                f"Argo Server answered {response.status_code} to {method} {path}: "
                f"{printable(detail.strip()[:300])}"
            )
        if response.status_code >= 300:  # redirects are not followed (the token stays here)
            raise ArgoError(f"Argo Server answered {response.status_code} to {method} {path}: not followed")
        return response

    def _bounded(self, method: str, path: str, **kw: Any) -> httpx.Response:
        """The answer, read whole only while under MAX_ANSWER bytes and within the deadline."""
        import time

        ends = time.monotonic() + self._deadline
        with self._http.stream(method, path, **kw) as streamed:
            body = bytearray()
            for chunk in streamed.iter_bytes():
                body += chunk
                if len(body) > MAX_ANSWER:
                    raise ArgoError(f"Argo Server's answer to {method} {path} is over {MAX_ANSWER >> 20} MiB")
                if time.monotonic() > ends:
                    raise ArgoError(
                        f"Argo Server's answer to {method} {path} took over {self._deadline:.0f} s"
                    )
            # the body as read is decoded already: the headers that described its transfer go
            kept = [(k, v) for k, v in streamed.headers.items() if k.lower() not in _TRANSFER_HEADERS]
            return self._httpx.Response(streamed.status_code, headers=kept, content=bytes(body))

    def _object(self, method: str, path: str, **kw: Any) -> WorkflowObject:
        """The JSON object the server answers with, checked for the shape conveyor reads (a
        mapping, its ``metadata`` and ``status`` mappings, ``status.nodes`` mappings): a broken
        or hostile server is an ArgoError, not a crash further on."""
        response = self._request(method, path, **kw)
        try:
            data = response.json()
        except ValueError:
            kind = response.headers.get("content-type", "no content type")
            raise ArgoError(
                f"Argo Server's answer to {method} {path} is not JSON ({printable(kind)})"
            ) from None
        shapes_ok = isinstance(data, dict) and all(
            isinstance(data.get(key) or {}, dict) for key in ("metadata", "status")
        )
        nodes = (data.get("status") or {}).get("nodes") if shapes_ok else None
        if (
            not shapes_ok
            or not isinstance(nodes or {}, dict)
            or not all(isinstance(node, dict) for node in (nodes or {}).values())
        ):
            raise ArgoError(f"Argo Server's answer to {method} {path} is not a workflow object")
        data["status"] = data.get("status") or {}
        found: WorkflowObject = data
        return found

    def submit(self, manifest: Manifest) -> WorkflowObject:
        """Create the manifest's object (a Workflow, WorkflowTemplate or CronWorkflow)."""
        collection, key = SUBMIT_PATHS[manifest["kind"]]
        namespace = manifest.get("metadata", {}).get("namespace") or self.namespace
        return self._object("POST", f"/api/v1/{collection}/{namespace}", json={key: manifest})

    def get(self, name: str) -> WorkflowObject:
        """The workflow ``name`` with its status (its phase and its nodes')."""
        return self._object("GET", f"/api/v1/workflows/{self.namespace}/{name}")

    def logs(self, name: str, pod: str | None = None) -> list[dict[str, str]]:
        """Log lines of a workflow's pods (their main containers): [{podName, content}]."""
        params = {"logOptions.container": "main"}
        if pod:
            params["podName"] = pod
        response = self._request("GET", f"/api/v1/workflows/{self.namespace}/{name}/log", params=params)
        lines = []
        for raw in response.text.splitlines():
            raw = raw.strip()
            if not raw:
                continue
            try:
                entry = json.loads(raw)
            except ValueError:
                continue
            result = entry.get("result") if isinstance(entry, dict) else None
            if not isinstance(result, dict):
                continue
            pod, content = result.get("podName", ""), result.get("content", "")
            lines.append({"podName": printable(str(pod)), "content": printable(str(content))})
        return lines

    def action(self, name: str, verb: str) -> WorkflowObject:
        """Stop, terminate, retry, resubmit, suspend or resume a workflow; the workflow after it."""
        if verb not in {"stop", "terminate", "retry", "resubmit", "suspend", "resume"}:
            raise ArgoError(f"unknown workflow action {verb!r}")
        body = {"name": name, "namespace": self.namespace}
        return self._object("PUT", f"/api/v1/workflows/{self.namespace}/{name}/{verb}", json=body)
