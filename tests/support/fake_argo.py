"""An HTTP server on loopback that answers the Argo Server endpoints conveyor uses, as
Argo documents them: POST /api/v1/workflows/{ns} with {"workflow": ...}; GET one; GET its
log (JSON lines of {"result": {"content", "podName"}}); PUT .../{stop|retry}; and 401
without the right bearer token, 404 for unknown workflows, 409 for a duplicate name.
Checked against the real ``argo server`` (tests/argoreal/test_server_client.py): stop only
sets ``spec.shutdown`` (the phase is the controller's to change), retry answers 400 unless
the workflow Failed or Errored and leaves it with no phase until the controller runs it."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


class FakeArgo:
    def __init__(self, token: str = "secret-token") -> None:
        self.token = token
        self.workflows: dict[tuple[str, str], dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []
        #: Answer this many requests 503 first (as a real server's gateway does when it cannot
        #: reach its gRPC side).
        self.unavailable = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, code: int, body: Any, raw: str | None = None) -> None:
                data = (raw if raw is not None else json.dumps(body)).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _route(self, method: str) -> None:
                url = urlparse(self.path)
                fake.calls.append((method, url.path))
                if fake.unavailable > 0:
                    fake.unavailable -= 1
                    return self._send(503, {"code": 14, "message": "connection error"})
                if self.headers.get("Authorization") != f"Bearer {fake.token}":
                    return self._send(401, {"code": 16, "message": "token not valid"})
                parts = url.path.strip("/").split("/")
                if parts[:3] != ["api", "v1", "workflows"] or len(parts) < 4:
                    return self._send(404, {"code": 5, "message": "not found"})
                namespace = parts[3]
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}") if length else {}
                if method == "POST" and len(parts) == 4:
                    workflow = body["workflow"]
                    name = workflow["metadata"]["name"]
                    if (namespace, name) in fake.workflows:
                        return self._send(
                            409, {"code": 6, "message": f'workflows.argoproj.io "{name}" already exists'}
                        )
                    workflow["metadata"]["namespace"] = namespace
                    workflow["status"] = {"phase": "Pending", "nodes": {}}
                    fake.workflows[(namespace, name)] = workflow
                    return self._send(200, workflow)
                name = parts[4] if len(parts) > 4 else ""
                workflow = fake.workflows.get((namespace, name))
                if workflow is None:
                    return self._send(
                        404, {"code": 5, "message": f'workflows.argoproj.io "{name}" not found'}
                    )
                if method == "GET" and len(parts) == 5:
                    return self._send(200, workflow)
                if method == "GET" and parts[5:] == ["log"]:
                    query = parse_qs(url.query)
                    assert query.get("logOptions.container") == ["main"]
                    lines = [
                        json.dumps({"result": {"content": c, "podName": p}})
                        for p, c in workflow.get("logs", [])
                    ]
                    return self._send(200, None, raw="\n".join(lines))
                if (
                    method == "PUT"
                    and len(parts) == 6
                    and parts[5] in {"stop", "retry", "terminate", "resubmit"}
                ):
                    verb = parts[5]
                    phase = workflow["status"].get("phase", "")
                    if verb == "retry" and phase not in ("Failed", "Error"):
                        # As the real server (it only retries ended, unsucceeded workflows)
                        return self._send(
                            400, {"code": 3, "message": f"Cannot retry a workflow in phase {phase}"}
                        )
                    if verb in ("stop", "terminate"):
                        # As the real server: it only asks the controller to shut the workflow
                        # down (spec.shutdown); the answer still shows the phase it had.
                        workflow["spec"]["shutdown"] = verb.capitalize()
                    else:  # retry, resubmit: the phase is reset ("") until the controller acts
                        workflow["spec"].pop("shutdown", None)
                        workflow["status"].pop("phase", None)
                    return self._send(200, workflow)
                return self._send(404, {"code": 5, "message": "not found"})

            def do_GET(self) -> None:
                self._route("GET")

            def do_POST(self) -> None:
                self._route("POST")

            def do_PUT(self) -> None:
                self._route("PUT")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeArgo:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
