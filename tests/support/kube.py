"""A small Kubernetes API client over httpx for the real-Argo test tier.

The tests talk to a real ``kube-apiserver`` on loopback; the ``kubernetes`` package is not
needed for the handful of calls they make (create, get, list, watch, update status, delete).
Paths are built from (group/version, plural, namespace, name) as the API server spells them.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

Obj = dict[str, Any]


class KubeError(RuntimeError):
    """The API server refused a request: the status code and its message."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"API server answered {status}: {text[:500]}")
        self.status = status


def api_path(api: str, plural: str, namespace: str | None = None, name: str | None = None) -> str:
    """``/api/v1/...`` for the core group, ``/apis/<group>/<version>/...`` otherwise."""
    base = "/api/v1" if api == "v1" else f"/apis/{api}"
    if namespace:
        base += f"/namespaces/{namespace}"
    base += f"/{plural}"
    return base + (f"/{name}" if name else "")


class Kube:
    """Authenticated by a static bearer token, trusting the API server's self-signed cert."""

    def __init__(self, server: str, token: str, ca: Path) -> None:
        self.server = server
        self.client = httpx.Client(
            base_url=server,
            headers={"Authorization": f"Bearer {token}"},
            verify=ssl.create_default_context(cafile=str(ca)),
            timeout=30,
        )

    def close(self) -> None:
        self.client.close()

    def _check(self, response: httpx.Response) -> Obj:
        if response.status_code >= 400:
            raise KubeError(response.status_code, response.text)
        body: Obj = response.json()
        return body

    def create(self, api: str, plural: str, body: Obj, namespace: str | None = None) -> Obj:
        return self._check(self.client.post(api_path(api, plural, namespace), json=body))

    def get(self, api: str, plural: str, name: str, namespace: str | None = None) -> Obj:
        return self._check(self.client.get(api_path(api, plural, namespace, name)))

    def list(self, api: str, plural: str, namespace: str | None = None, **params: str) -> Obj:
        return self._check(self.client.get(api_path(api, plural, namespace), params=params))

    def delete(self, api: str, plural: str, name: str, namespace: str | None = None) -> None:
        response = self.client.delete(api_path(api, plural, namespace, name))
        if response.status_code not in (200, 202, 404):
            raise KubeError(response.status_code, response.text)

    def subresource(self, api: str, plural: str, name: str, namespace: str, sub: str, body: Obj) -> Obj:
        """POST a subresource, e.g. a pod's ``binding``."""
        path = api_path(api, plural, namespace, name) + f"/{sub}"
        return self._check(self.client.post(path, json=body))

    def replace_status(self, api: str, plural: str, body: Obj) -> Obj:
        """PUT an object's ``status`` subresource (as a kubelet updates a pod's status)."""
        meta = body["metadata"]
        path = api_path(api, plural, meta.get("namespace"), meta["name"]) + "/status"
        return self._check(self.client.put(path, json=body))

    def watch(self, api: str, plural: str, resource_version: str, **params: str) -> Iterator[Obj]:
        """The events of one watch request, until the server ends it (the caller reconnects)."""
        query = {"watch": "1", "resourceVersion": resource_version, "allowWatchBookmarks": "true", **params}
        with self.client.stream("GET", api_path(api, plural), params=query, timeout=None) as response:
            if response.status_code >= 400:
                raise KubeError(response.status_code, response.read().decode())
            for line in response.iter_lines():
                if line.strip():
                    yield json.loads(line)
